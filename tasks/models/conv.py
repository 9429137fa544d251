"""The convolutional field of the GQ paper's image classifier (repo a-norcliffe/torch_gq_adjoint, models/modules.py)."""

from __future__ import annotations

import torch
from torch import nn


class ConvField(nn.Module):
    """f(t, x) = three 3x3 convolutions channels -> hidden -> hidden -> channels (padding 1), Softplus between;
    time-independent."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.Softplus(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.Softplus(),
            nn.Conv2d(hidden, channels, 3, padding=1),
        )

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
