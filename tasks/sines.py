"""Sines (the GQ paper's time-series task): a second-order neural ODE fitted to y(t) = A sin t + B cos t.

(A, B) ~ U(-1, 1)^2 per curve; `num_times` observation times on [0, 2 pi], regular (linspace) or irregular (sorted
uniform draws with the first set to 0), shared by every curve (tasks/data/sines.py). The model starts from the true
[y(0), y'(0)] = [B, A] (the authors' encoder is the identity on that state) and is fitted by MSE on y at every
observation time. Full batch, as in the paper. Metric: test MSE on held-out curves.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from tasks.base import SINES_TIMES, TEST_DATA, TRAIN_DATA, Solver, Task, positive_ints
from tasks.data.sines import observation_times, sine_curves
from tasks.models.mlp import SecondOrderField


class Sines(Task):
    metric = "test_mse"

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        width: int = 100,
        num_times: int = 10,
        regular: bool = True,
        train_curves: int = 15,
        test_curves: int = 5,
    ) -> None:
        super().__init__(seed, device, dtype)
        positive_ints(width=width, train_curves=train_curves, test_curves=test_curves)
        if num_times < 2:
            raise ValueError(f"task.num_times must be at least 2, got {num_times}")
        self.dataset = f"sines ({num_times} {'regular' if regular else 'irregular'} times, generated)"
        self.field = SecondOrderField(1, width).to(device, dtype)
        self.model = self.field
        self.ts = observation_times(num_times, regular, self.generator(SINES_TIMES)).to(device, dtype)
        to = lambda x: x.to(device, dtype)
        times = self.ts.double().cpu()
        self.train_x0, self.train_y = map(to, sine_curves(train_curves, times, self.generator(TRAIN_DATA)))
        self.test_x0, self.test_y = map(to, sine_curves(test_curves, times, self.generator(TEST_DATA)))

    def mse(self, x0: torch.Tensor, y: torch.Tensor, solver: Solver) -> torch.Tensor:
        return F.mse_loss(solver.solve(self.field, x0, self.ts)[..., :1], y)

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        return self.mse(self.train_x0, self.train_y, solver)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        return {"test_mse": self.mse(self.test_x0, self.test_y, solver).item()}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return self.mse(self.test_x0, self.test_y, solver)

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.mse(self.train_x0, self.train_y, solver)
