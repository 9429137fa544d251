"""SDE training through the Wong–Zakai theorem, usable by any SDE task.

A Stratonovich SDE dx = f(t, x) dt + g(t, x) o dW is approximated by the ODE dx/dt = f(t, x) + g(t, x) xi(t), where
xi(t) is a smooth random function whose integral approximates Brownian motion: the truncated Karhunen–Loève series

    xi(t) = sqrt(2 / c) * sum_{n=1..N} xi_n cos((n - 1/2) pi (t - t0) / c),  c = t1 - t0,  xi_n ~ N(0, 1)

(as in Norcliffe & Deisenroth 2023). As N grows the ODE's solutions converge to the Stratonovich SDE's (Wong–Zakai),
so an SDE can be trained with ANY ODE gradient method (GQ, adjoint, direct, reversible, ...) and its parameters then
used, unchanged, in the SDE. The coefficients xi_n are redrawn for every forward pass from a generator the task seeds
per step, so runs stay pure functions of (seed, step).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_basis(t: torch.Tensor, t0: float, t1: float, ncosines: int) -> torch.Tensor:
    """sqrt(2/c) cos((n - 1/2) pi (t - t0) / c) for n = 1..N, shape (N,); works under torch.func.vmap over t."""
    c = t1 - t0
    n = torch.arange(1, ncosines + 1, dtype=t.dtype if t.is_floating_point() else torch.float32, device=t.device)
    return math.sqrt(2.0 / c) * torch.cos((n - 0.5) * math.pi * (t - t0) / c)


class WongZakaiODE(nn.Module):
    """The ODE dx/dt = f(t, x) + g(t, x) xi(t) of a diagonal-noise SDE module (torchsde protocol: `f`, `g`).

    Call `resample(state_shape, generator)` before each solve to draw fresh coefficients, one set per state element.
    With `ncosines = 0` the noise vanishes and the ODE is the SDE's drift alone."""

    def __init__(self, sde: nn.Module, t0: float, t1: float, ncosines: int) -> None:
        super().__init__()
        if getattr(sde, "noise_type", "diagonal") != "diagonal":
            raise ValueError("Wong–Zakai training here supports diagonal noise (one Brownian motion per state element)")
        if ncosines < 0:
            raise ValueError(f"ncosines must be >= 0, got {ncosines}")
        self.sde, self.t0, self.t1, self.ncosines = sde, float(t0), float(t1), ncosines
        self.coefficients: torch.Tensor | None = None

    def resample(self, state: torch.Tensor, generator: torch.Generator) -> None:
        """Draw xi_n ~ N(0, 1) for every element of a state shaped like `state` (shape (*state.shape, N))."""
        xi = torch.randn(*state.shape, self.ncosines, generator=generator, dtype=torch.float64)
        self.coefficients = xi.to(state.device, state.dtype)

    def noise(self, t: torch.Tensor) -> torch.Tensor:
        return (self.coefficients * cosine_basis(t, self.t0, self.t1, self.ncosines)).sum(-1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        drift = self.sde.f(t, x)
        if self.ncosines == 0:
            return drift
        if self.coefficients is None:
            raise RuntimeError("call resample(...) before solving the Wong–Zakai ODE")
        return drift + self.sde.g(t, x) * self.noise(t)
