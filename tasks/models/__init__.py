"""The network blocks tasks are built from: vector fields f(t, y) and the modules around them. Nothing here reads
data or knows about a gradient method; a task combines a block with its data, loss and metric.

`mlp` (the MLP fields of the GQ and reversible papers, and a neural SDE's drift and diffusion), `conv` (the image
ODE's convolutional field), `cnf` (FFJORD's CNF field, concat-squash net and divergence estimators),
`multiscale_cnf` (FFJORD's multiscale image flow), `ncde` (the neural CDE and its interpolated control), `symoden`
(Symplectic ODE-Net), `wong_zakai` (an SDE as an ODE driven by smooth noise), `exponential` (dz/dt = a z).
"""
