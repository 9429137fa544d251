"""FFJORD's multiscale continuous normalising flow on images (Grathwohl et al. 2019), test metric bits/dim.

The architecture of FFJORD's `ODENVP` (`train_cnf.py --multiscale True`): a logit transform, then per scale
`num_blocks` CNFs, a 2x2 squeeze, `num_blocks` more CNFs, and half the channels factored out to the Gaussian; the
last scale has no squeeze. Scales continue while both sides are at least 4 pixels (MNIST 28x28: 3 scales, 10 CNFs
with num_blocks=2). Each CNF's network is FFJORD's conv `ODEnet` with `concat` layers (time as an extra input
channel), 3x3 convolutions of widths `dims`, softplus between them. The divergence uses Hutchinson's estimator with
Rademacher noise held fixed over each solve (FFJORD's `--rademacher True`). Each CNF is one `solver.solve` of the
state [z, l], so every gradient method applies to every block.

Not carried over from FFJORD: a learned end time (`train_T`; here the end time is fixed at `time_length`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from tasks.base import Solver, Task
from tasks.cnf import CNFField, standard_normal_logprob
from tasks.image_data import load_images

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


@functools.lru_cache(maxsize=4)
def _cached_images(data: str, data_dir: str, download: bool):
    return load_images(data, data_dir, download)


class CNFImages(Task):
    metric = "test_bpd"
    lower_is_better = True

    def __init__(
        self,
        seed: int,
        device: torch.device,
        dtype: torch.dtype,
        data: str = "mnist",
        data_dir: str = "data",
        download: bool = True,
        dims: list[int] | None = None,
        num_blocks: int = 2,
        alpha: float = 1e-6,
        time_length: float = 1.0,
        batch_size: int = 200,
        eval_batch_size: int = 200,
        max_train: int = 0,
        max_test: int = 0,
        check_size: int = 4,
    ) -> None:
        super().__init__(seed, device, dtype)
        dims = [64, 64, 64] if dims is None else list(dims)
        if not dims or any(not isinstance(d, int) or d < 1 for d in dims):
            raise ValueError(f"task.dims must be a list of positive integers, got {dims}")
        for key, value in (("num_blocks", num_blocks), ("batch_size", batch_size),
                           ("eval_batch_size", eval_batch_size), ("check_size", check_size)):
            if value < 1:
                raise ValueError(f"task.{key} must be at least 1, got {value}")
        if not 0 <= alpha < 0.5:
            raise ValueError(f"task.alpha must be in [0, 0.5), got {alpha}")
        if time_length <= 0:
            raise ValueError(f"task.time_length must be positive, got {time_length}")
        images = _cached_images(data, str(Path(data_dir)), download)
        train, test, self.levels, description = images.train_x, images.test_x, images.levels, images.description
        if max_train and max_train < len(train):
            train = train[torch.randperm(len(train), generator=self.generator(-1))[:max_train]]
        if max_test and max_test < len(test):
            test = test[torch.randperm(len(test), generator=self.generator(-2))[:max_test]]
        self.train_x, self.test_x = train.to(device), test.to(device)
        self.shape: Shape = tuple(train.shape[1:])
        self.dimension = math.prod(self.shape)  # D of bits/dim
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.check_size = check_size
        self.dataset = f"{description}; {len(train)} train / {len(test)} test images of {self.shape}"
        torch.manual_seed(seed)
        self.model = MultiscaleCNF(self.shape, dims, num_blocks, alpha, time_length).to(device, dtype)

    # data
    def dequantise(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Integer pixels -> (pixels + U(0, 1)) / levels in [0, 1) (FFJORD's `add_noise`)."""
        u = torch.rand(pixels.shape, generator=generator, dtype=self.dtype).to(self.device)
        return (pixels.to(self.dtype) + u) / self.levels

    def rademacher(self, batch: int, generator: torch.Generator) -> Noise:
        def noise(dim: int) -> torch.Tensor:
            signs = torch.randint(0, 2, (batch, dim), generator=generator).to(self.device, self.dtype)
            return 2 * signs - 1
        return noise

    def bits_per_dim(self, log_prob: torch.Tensor) -> torch.Tensor:
        """-(log p(x) / D - log(levels)) / log 2: the discrete data's negative log-likelihood per dimension."""
        return -(log_prob / self.dimension - math.log(self.levels)) / math.log(2)

    def loss(self, pixels: torch.Tensor, solver: Solver, generator: torch.Generator) -> torch.Tensor:
        x = self.dequantise(pixels, generator)
        log_prob = self.model.log_prob(x, solver.solve, self.rademacher(len(x), generator))
        return self.bits_per_dim(log_prob).mean()

    # Task
    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        batch = self.train_x[self.epoch_batch(len(self.train_x), self.batch_size, step)]
        return self.loss(batch, solver, self.generator(step))

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        generator = self.generator(-3)
        total = 0.0
        for pixels in self.test_x.split(self.eval_batch_size):
            total += self.loss(pixels, solver, generator).item() * len(pixels)
        return {"test_bpd": total / len(self.test_x)}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return self.loss(self.test_x[: self.eval_batch_size], solver, self.generator(-4))

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.loss(self.train_x[: self.check_size], solver, self.generator(-5))
