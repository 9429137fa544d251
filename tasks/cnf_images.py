"""FFJORD's multiscale continuous normalising flow on images (Grathwohl et al. 2019), test metric bits/dim.

The flow is tasks/models/multiscale_cnf.py (FFJORD's `ODENVP`: per scale `num_blocks` conv CNFs, a squeeze, more
CNFs, half the channels factored out), each CNF one `solver.solve` of [z, l] with Hutchinson's estimator on
Rademacher noise held fixed over the solve. The data are tasks/data/images.py's integer pixels, dequantised with
uniform noise (FFJORD's `add_noise`). Not carried over from FFJORD: a learned end time (`train_T`; here the end time
is fixed at `time_length`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from tasks.base import (
    CNF_IMAGES_CHECK_NOISE,
    CNF_IMAGES_EVAL_NOISE,
    CNF_IMAGES_HELD_OUT_NOISE,
    TEST_DATA,
    TRAIN_DATA,
    Solver,
    Task,
    positive_ints,
    positive_numbers,
)
from tasks.data.images import cached_images
from tasks.models.multiscale_cnf import MultiscaleCNF, Noise, Shape


class CNFImages(Task):
    metric = "test_bpd"

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
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
        positive_ints(num_blocks=num_blocks, batch_size=batch_size, eval_batch_size=eval_batch_size,
                      check_size=check_size)
        if not 0 <= alpha < 0.5:
            raise ValueError(f"task.alpha must be in [0, 0.5), got {alpha}")
        positive_numbers(time_length=time_length)
        images = cached_images(data, str(Path(data_dir)), download)
        self.levels, description = images.levels, images.description
        (train,) = self.subset(max_train, TRAIN_DATA, images.train_x)
        (test,) = self.subset(max_test, TEST_DATA, images.test_x)
        self.train_x, self.test_x = train.to(device), test.to(device)
        self.shape: Shape = tuple(train.shape[1:])
        self.dimension = math.prod(self.shape)  # D of bits/dim
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.check_size = check_size
        self.dataset = f"{description}; {len(train)} train / {len(test)} test images of {self.shape}"
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
        generator = self.generator(CNF_IMAGES_EVAL_NOISE)
        total = 0.0
        for pixels in self.test_x.split(self.eval_batch_size):
            total += self.loss(pixels, solver, generator).item() * len(pixels)
        return {"test_bpd": total / len(self.test_x)}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return self.loss(self.test_x[: self.eval_batch_size], solver, self.generator(CNF_IMAGES_HELD_OUT_NOISE))

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.loss(self.train_x[: self.check_size], solver, self.generator(CNF_IMAGES_CHECK_NOISE))
