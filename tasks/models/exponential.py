"""dz/dt = a z with one trainable parameter a: the field of the GQ paper's analytical gradient test (toy_gradient),
whose loss and gradients are known in closed form."""

from __future__ import annotations

import torch
from torch import nn


class Exponential(nn.Module):
    """f(t, z) = a z, `a` a float64 parameter (the test measures the method, not round-off)."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.a * z
