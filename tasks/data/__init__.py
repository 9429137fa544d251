"""Where a task's data come from: loaders of the real datasets in their own formats, their offline stand-ins, and
generators of simulated or synthetic data. Nothing here builds a model or solves a differential equation that is
learned; each function returns plain tensors or arrays (on the CPU) and says in a description which data it gave.

One module per dataset or family: `toy_densities` (FFJORD's 2-D densities), `images` (MNIST, CIFAR-10, SVHN and the
offline digits / MNIST subset), `speech_commands`, `uea` (the UEA archive's .ts files), `time_series` (preparing
labelled series for a neural CDE, and choosing between those two loaders), `acrobot` (simulated trajectories),
`physical_systems` (the measured oscillator and pendulum, or their simulated stand-ins), `ornstein_uhlenbeck`,
`nested_spheres`, `sines`, `white_dwarf`.
"""
