"""Continuous normalising flow on scikit-learn's two moons: the reversible-solvers paper's CNF experiment (v1).

Settings from repo sammccallum/reversible, experiments/cnf/cnf.py: make_moons(n=1000, noise=0.05, random_state=0),
standardised; 4 concat-squash layers of width 128 with tanh; exact divergence; [0, 1] with fixed steps of 0.01;
full batch. The metric is the training NLL (the paper reports the best training NLL over iterations; analysis takes
the minimum over the evaluations in metrics.jsonl). The flow and its field are those of tasks/models/cnf.py.
"""

from __future__ import annotations

import torch
from sklearn.datasets import make_moons

from tasks.base import Solver, Task, positive_ints
from tasks.models.cnf import CNFField, ConcatSquashNet, flow_nll


class CNFMoons(Task):
    metric = "train_nll"

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, num_points: int = 1000,
                 noise: float = 0.05, hidden: int = 128, num_layers: int = 3, time_length: float = 1.0,
                 check_size: int = 64) -> None:
        super().__init__(seed, device, dtype)
        if num_points < 2:
            raise ValueError(f"task.num_points must be at least 2, got {num_points}")
        positive_ints(hidden=hidden, num_layers=num_layers)
        x, _ = make_moons(n_samples=num_points, noise=noise, random_state=0)
        x = torch.as_tensor(x, dtype=dtype)
        self.x = ((x - x.mean(0)) / x.std(0)).to(device)
        self.field = CNFField(ConcatSquashNet(2, hidden, num_layers), dim=2).to(device, dtype)
        self.model = self.field
        self.ts = torch.tensor([0.0, time_length], device=device, dtype=dtype)
        self.check_x = self.x[:check_size]
        self.dataset = f"sklearn make_moons(n={num_points}, noise={noise}, random_state=0), standardised"

    def nll(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        return flow_nll(self.field, x, self.ts, solver.solve)

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        return self.nll(self.x, solver)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        return {"train_nll": self.nll(self.x, solver).item()}

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.nll(self.check_x, solver)
