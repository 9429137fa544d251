"""g1d, the 1-D "crossing trajectories" toy of the GQ paper's repo: map x = -1 -> 1 and x = 1 -> -1.

An ODE cannot cross trajectories in 1-D, so the state is augmented with `augment_dim` zeros (repo: 3); the field is an
MLP of `width` without time input (two hidden layers, Softplus); the first coordinate at t = 1 is compared with -x by
MSE. Full batch (two points). The repo's notebook g1d_example.ipynb prints timings of this task at width 3000.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from tasks.base import FullBatchTask, Solver, positive_ints
from tasks.models.mlp import MLPField


class G1D(FullBatchTask):
    metric = "test_mse"

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, width: int = 20,
                 augment_dim: int = 3) -> None:
        super().__init__(seed, device, dtype)
        positive_ints(width=width)
        if augment_dim < 0:
            raise ValueError(f"task.augment_dim must be at least 0, got {augment_dim}")
        self.dataset = "g1d (two points, generated)"
        self.augment_dim = augment_dim
        self.field = MLPField(1 + augment_dim, width, time=False).to(device, dtype)
        self.model = self.field
        self.x = torch.tensor([[-1.0], [1.0]], device=device, dtype=dtype)
        self.ts = torch.tensor([0.0, 1.0], device=device, dtype=dtype)

    def loss(self, solver: Solver) -> torch.Tensor:
        state0 = torch.cat([self.x, self.x.new_zeros(2, self.augment_dim)], dim=1)
        return F.mse_loss(solver.solve(self.field, state0, self.ts)[-1][:, :1], -self.x)
