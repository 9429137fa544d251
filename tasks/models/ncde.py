"""Neural controlled differential equations (Kidger et al. 2020) as plain ODEs, so every gradient method applies.

A neural CDE dz = f(z) dX(t) is solved as the ODE dz/dt = f(z) dX/dt(t), with X a torchcde interpolation of the
observed series. `CDEField` holds the control for the current batch, so `method.solve(field, z0, ts)` sees a
vector field f(t, z) like any other and the backward solve of an adjoint carries only [z, a_z, a_theta].
"""

from __future__ import annotations

import torch
import torchcde
from torch import nn

INTERPOLATIONS = ("linear", "cubic", "hermite")


def interpolation_coeffs(x: torch.Tensor, kind: str, t: torch.Tensor | None = None) -> torch.Tensor:
    """torchcde coefficients of `x` (N, length, channels): `linear` (the seminorm paper), `cubic` (natural cubic
    spline), `hermite` (cubic Hermite with backward differences)."""
    if kind == "linear":
        return torchcde.linear_interpolation_coeffs(x, t=t)
    if kind == "cubic":
        return torchcde.natural_cubic_coeffs(x, t=t)
    if kind == "hermite":
        return torchcde.hermite_cubic_coefficients_with_backward_differences(x, t=t)
    raise ValueError(f"interpolation={kind!r} is not known; choose one of {', '.join(INTERPOLATIONS)}")


def make_control(coeffs: torch.Tensor, kind: str, t: torch.Tensor | None = None):
    """The torchcde interpolation object for coefficients made by `interpolation_coeffs`."""
    if kind == "linear":
        return torchcde.LinearInterpolation(coeffs, t=t)
    return torchcde.CubicSpline(coeffs, t=t)  # natural cubic and Hermite coefficients share one evaluator


class CDEVectorField(nn.Module):
    """f(z): an MLP from the hidden state to a (hidden x input) matrix, ReLU inside and tanh at the end, as in
    Kidger et al.'s Neural CDE code: `depth` linear layers of width `width` (the first maps from the hidden state)
    and one output layer."""

    def __init__(self, input_channels: int, hidden_channels: int, width: int, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        sizes = [hidden_channels] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(width, hidden_channels * input_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            z = torch.relu(layer(z))
        return torch.tanh(self.out(z)).view(*z.shape[:-1], self.hidden_channels, self.input_channels)


class CDEField(nn.Module):
    """dz/dt = f(z) dX/dt(t): the CDE as an ODE in z. Set `control` (a torchcde interpolation) per batch."""

    def __init__(self, matrix_field: CDEVectorField) -> None:
        super().__init__()
        self.matrix_field = matrix_field
        self.control = None

    def __setattr__(self, name: str, value) -> None:
        if name == "control":  # data, not a submodule: keep it out of state_dict() and parameters()
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.control is None:
            raise RuntimeError("CDEField.control is not set: assign the batch's interpolation before solving")
        dx = self.control.derivative(t)
        return (self.matrix_field(z) @ dx.unsqueeze(-1)).squeeze(-1)


class NeuralCDE(nn.Module):
    """z(t0) = W X(t0); dz = f(z) dX; logits = readout(z(T))."""

    def __init__(self, input_channels: int, hidden_channels: int, width: int, depth: int, output_channels: int,
                 authors_init: bool = False) -> None:
        """`authors_init`: build the vector field before the initial map, as the seminorm authors' models/cde.py
        does, so a seed draws the initial parameters their code draws after torch.manual_seed with that seed."""
        super().__init__()
        field = CDEField(CDEVectorField(input_channels, hidden_channels, width, depth)) if authors_init else None
        self.initial = nn.Linear(input_channels, hidden_channels)
        if field is None:
            field = CDEField(CDEVectorField(input_channels, hidden_channels, width, depth))
        self.field = field
        self.readout = nn.Linear(hidden_channels, output_channels)

    def forward(self, control, solve, jump_at_knots: bool = False, jump_at_end: bool = False) -> torch.Tensor:
        """Logits for the batch whose interpolation is `control`; `solve(field, z0, ts, jump_t=...)` is the gradient
        method's. `jump_at_knots`: make adaptive steps end at the interpolation's interior knots, where dX/dt jumps;
        `jump_at_end`: the end time T too (torchdiffeq 0.1's grid_points, which the seminorm authors used, count T as
        a crossing and evaluate the field once more there)."""
        t = control.interval
        self.field.control = control  # kept after the solve: an adjoint's backward pass evaluates the field again
        z0 = self.initial(control.evaluate(t[0]))
        knots = control.grid_points
        jump_t = (knots[1:] if jump_at_end else knots[1:-1]) if jump_at_knots else None
        return self.readout(solve(self.field, z0, t, jump_t=jump_t)[-1])
