"""FFJORD's multiscale continuous normalising flow on images (Grathwohl et al. 2019).

The architecture of FFJORD's `ODENVP` (`train_cnf.py --multiscale True`): a logit transform, then per scale
`num_blocks` CNFs, a 2x2 squeeze, `num_blocks` more CNFs, and half the channels factored out to the Gaussian; the
last scale has no squeeze. Scales continue while both sides are at least 4 pixels (MNIST 28x28: 3 scales, 10 CNFs
with num_blocks=2). Each CNF's network is FFJORD's conv `ODEnet` with `concat` layers (time as an extra input
channel), 3x3 convolutions of widths `dims`, softplus between them. The divergence uses Hutchinson's estimator with
Rademacher noise held fixed over each solve (FFJORD's `--rademacher True`). Each CNF is one `solver.solve` of the
state [z, l], so every gradient method applies to every block. The task is tasks/cnf_images.py.

Not carried over from FFJORD: a learned end time (`train_T`; here the end time is fixed at `time_length`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from tasks.models.cnf import CNFField, standard_normal_logprob

Shape = tuple[int, int, int]


class ConcatConv2d(nn.Module):
    """3x3 convolution of [t, x]: time enters as one constant extra channel (FFJORD's `ConcatConv2d`)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim_in + 1, dim_out, kernel_size=3, stride=1, padding=1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = t.to(x).expand(x.shape[0], 1, *x.shape[2:])
        return self.conv(torch.cat([tt, x], dim=1))


class ConvODENet(nn.Module):
    """f(t, z) on flattened images of `shape`: concat-conv layers of widths `dims`, softplus between them."""

    def __init__(self, shape: Shape, dims: Sequence[int]) -> None:
        super().__init__()
        self.shape = shape
        widths = [shape[0], *dims, shape[0]]
        self.layers = nn.ModuleList(ConcatConv2d(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.shape[0], *self.shape)
        for i, layer in enumerate(self.layers):
            x = layer(t, x)
            if i < len(self.layers) - 1:
                x = nn.functional.softplus(x)
        return x.flatten(1)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2), each 2x2 patch to channels (volume preserving)."""
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def num_scales(h: int, w: int) -> int:
    """FFJORD's rule: one more scale while both sides are at least 4."""
    n = 0
    while h >= 4 and w >= 4:
        n, h, w = n + 1, h // 2, w // 2
    return n


Noise = Callable[[int], torch.Tensor]  # noise(dim) -> (B, dim) Hutchinson probe vectors for one solve


class MultiscaleCNF(nn.Module):
    """log p(x) of images x in [0, 1] (dequantised) under the multiscale flow."""

    def __init__(self, shape: Shape, dims: Sequence[int], num_blocks: int, alpha: float, time_length: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.time_length = time_length
        c, h, w = shape
        self.scales = nn.ModuleList()
        n = num_scales(h, w)
        for i in range(n):
            stages = [self._blocks((c, h, w), dims, num_blocks)]
            if i < n - 1:
                stages.append(self._blocks((4 * c, h // 2, w // 2), dims, num_blocks))
            self.scales.append(nn.ModuleList(stages))
            c, h, w = 2 * c, h // 2, w // 2

    @staticmethod
    def _blocks(shape: Shape, dims: Sequence[int], num_blocks: int) -> nn.ModuleList:
        return nn.ModuleList(CNFField(ConvODENet(shape, dims), dim=math.prod(shape)) for _ in range(num_blocks))

    def _logit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y = logit(alpha + (1 - 2 alpha) x) and log|dy/dx| summed per image."""
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        logdet = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        return y, logdet

    def _flow(self, block: CNFField, x: torch.Tensor, logdet: torch.Tensor, solve, noise: Noise,
              ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        block.noise = noise(math.prod(shape[1:]))
        state0 = torch.cat([x.flatten(1), logdet[:, None]], dim=1)
        ts = torch.tensor([0.0, self.time_length], dtype=x.dtype, device=x.device)
        state = solve(block, state0, ts)[-1]
        return state[:, :-1].reshape(shape), state[:, -1]

    def log_prob(self, x: torch.Tensor, solve, noise: Noise) -> torch.Tensor:
        """log p(x) per image (nats) of the continuous x in [0, 1]."""
        z, logdet = self._logit(x)
        factored = []
        for i, stages in enumerate(self.scales):
            for j, blocks in enumerate(stages):
                if j == 1:
                    z = squeeze(z)
                for block in blocks:
                    z, logdet = self._flow(block, z, logdet, solve, noise)
            if i < len(self.scales) - 1:
                half = z.shape[1] // 2
                factored.append(z[:, half:].flatten(1))
                z = z[:, :half]
        factored.append(z.flatten(1))
        return standard_normal_logprob(torch.cat(factored, dim=1)) + logdet
