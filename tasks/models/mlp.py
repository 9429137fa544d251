"""MLP vector fields: the GQ paper's (two hidden layers of width W, Softplus, optionally fed the time), a neural
SDE's drift and diffusion made of them, and the reversible paper's one-hidden-layer tanh fields."""

from __future__ import annotations

import torch
from torch import nn


class MLPField(nn.Module):
    """f(t, x) = MLP([x, t]) (or MLP(x) when `time=False`): dim -> W -> W -> out_dim, Softplus between."""

    def __init__(self, dim: int, width: int, out_dim: int | None = None, time: bool = True) -> None:
        super().__init__()
        self.time = time
        self.net = nn.Sequential(
            nn.Linear(dim + int(time), width), nn.Softplus(),
            nn.Linear(width, width), nn.Softplus(),
            nn.Linear(width, out_dim if out_dim is not None else dim),
        )

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.time:
            x = torch.cat([x, t.to(x).expand(*x.shape[:-1], 1)], dim=-1)
        return self.net(x)


class SecondOrderField(nn.Module):
    """d/dt [x, v] = [v, MLP([x, v])]: the second-order neural ODE of the sines experiment (time-independent)."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.dim = dim
        self.acceleration = MLPField(2 * dim, width, out_dim=dim, time=False)

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return torch.cat([state[..., self.dim :], self.acceleration(t, state)], dim=-1)


class NeuralSDE(nn.Module):
    """Drift and diagonal diffusion, each a time-dependent `MLPField` of `width` (torchsde's protocol: `f`, `g`)."""

    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.drift = MLPField(dim, width)
        self.diffusion = MLPField(dim, width)

    def f(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.drift(t, x)

    def g(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.diffusion(t, x)


class TanhField(nn.Module):
    """f(t, y) = Linear -> tanh -> Linear (dim -> hidden -> dim) of y, or of [t, y] (time first) when `time=True`:
    the fields of the reversible paper's regression, physical-system and white-dwarf experiments."""

    def __init__(self, dim: int, hidden: int, time: bool = False) -> None:
        super().__init__()
        self.time = time
        self.net = nn.Sequential(nn.Linear(dim + int(time), hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.time:
            y = torch.cat([t.expand(*y.shape[:-1], 1).to(y), y], dim=-1)
        return self.net(y)
