"""Scalar neural ODE regression: the reversible-solvers paper's gradient-error, memory and runtime problem.

Repo sammccallum/reversible, experiments/regression: inputs x = linspace(-2, 2, n) are the initial states of a scalar
ODE dy/dt = f(y) (Linear 1->width, tanh, width->1, autonomous), integrated to T; the prediction y(T) is fitted to
x^3 + x by mean squared error. The paper measures, at initialisation, each method's gradient error against direct
backprop through the same midpoint steps and its memory, as T grows (v1), and the time of one gradient as the number of
steps grows (v2, width 10). Test metric: the MSE itself (there is no held-out split: the data are a fixed curve).
"""

from __future__ import annotations

import torch

from tasks.base import FullBatchTask, Solver, positive_ints, positive_numbers
from tasks.models.mlp import TanhField


class NODERegression(FullBatchTask):

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, width: int = 50,
                 time_length: float = 1.0, num_points: int = 1000) -> None:
        super().__init__(seed, device, dtype)
        positive_ints(width=width, num_points=num_points)
        positive_numbers(time_length=time_length)
        self.model = TanhField(1, width).to(device, dtype)
        self.x = torch.linspace(-2, 2, num_points, device=device, dtype=dtype)[:, None]
        self.y = self.x**3 + self.x
        self.ts = torch.tensor([0.0, time_length], device=device, dtype=dtype)
        self.dataset = f"x^3 + x on linspace(-2, 2, {num_points}) (generated)"

    def loss(self, solver: Solver) -> torch.Tensor:
        return (solver.solve(self.model, self.x, self.ts)[-1] - self.y).pow(2).mean()
