"""The GQ paper's vector fields: MLPs with two hidden layers of width W and Softplus, optionally fed the time."""

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

