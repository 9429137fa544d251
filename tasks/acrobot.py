"""Symplectic ODE-Net learning the acrobot's controlled dynamics (the seminorm paper's "physical control" task).

Data: `tasks/data/acrobot.py` simulates `trajectories` trajectories of `steps` steps for each of the nine constant
controls and cuts them into windows of `window` observations (dt = 0.05). The model predicts each window from its
first observation; the loss and the test metric are the mean squared error over the whole predicted window
(all 8 channels, as the authors' code).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from tasks.base import TEST_DATA, Solver, Task, positive_ints
from tasks.data.acrobot import DT, acrobot_windows
from tasks.models.symoden import SymODENField


class AcrobotSymODEN(Task):
    metric = "test_mse"

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        trajectories: int = 128,
        steps: int = 32,
        window: int = 8,
        data_seed: int = 456789,
        mass_hidden: int = 400,
        potential_hidden: int = 300,
        control_hidden: int = 300,
        batch_size: int = 256,
        eval_batch_size: int = 1024,
        max_test: int = 0,
        check_size: int = 4,
    ) -> None:
        super().__init__(seed, device, dtype)
        positive_ints(trajectories=trajectories, mass_hidden=mass_hidden, potential_hidden=potential_hidden,
                      control_hidden=control_hidden, batch_size=batch_size, eval_batch_size=eval_batch_size,
                      check_size=check_size)
        if window < 2 or steps < window:
            raise ValueError(f"task.window must be at least 2 and at most task.steps, got window={window}, "
                             f"steps={steps}")
        if trajectories < 7:
            raise ValueError(f"task.trajectories must be at least 7 (a 70/15/15 split needs a test trajectory), "
                             f"got {trajectories}")
        train, val, test = acrobot_windows(trajectories, steps, window, data_seed)
        (test,) = self.subset(max_test, TEST_DATA, test)
        self.train_x, self.val_x, self.test_x = (part.to(device, dtype) for part in (train, val, test))
        self.ts = torch.arange(window, device=device, dtype=dtype) * DT
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.check_size = check_size
        self.dataset = (f"acrobot simulated in code (book dynamics, 9 constant controls x {trajectories} "
                        f"trajectories x {steps} steps, seed {data_seed}); {len(train)} train / {len(test)} test "
                        f"windows of {window}")
        self.field = SymODENField(2, 2, mass_hidden, potential_hidden, control_hidden).to(device, dtype)
        self.model = self.field

    def mse(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        """Mean squared error of the trajectory predicted from each window's first observation."""
        predicted = solver.solve(self.field, x[:, 0], self.ts).transpose(0, 1)
        return F.mse_loss(predicted, x)

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        return self.mse(self.train_x[self.epoch_batch(len(self.train_x), self.batch_size, step)], solver)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        total = sum(self.mse(x, solver).item() * len(x) for x in self.test_x.split(self.eval_batch_size))
        return {"test_mse": total / len(self.test_x)}

    pass_splits = ("train", "val", "test")

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_x) / self.batch_size)

    def pass_batches(self, split: str, solver: Solver) -> Iterator[tuple[torch.Tensor, int, dict[str, float]]]:
        data = {"train": self.train_x, "val": self.val_x, "test": self.test_x}[split]
        for x in data.split(self.eval_batch_size):
            yield self.mse(x, solver), len(x), {}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return self.mse(self.val_x[: self.eval_batch_size], solver)

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.mse(self.train_x[: self.check_size], solver)
