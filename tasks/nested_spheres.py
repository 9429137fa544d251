"""Nested spheres (Dupont et al. 2019's "g" task, as the GQ paper runs it): an augmented neural ODE classifier.

Points uniform in [-1, 1]^2: class 0 inside radius 0.4, class 1 in the ring 0.7 < r < 0.9 (rejection sampling,
tasks/data/nested_spheres.py). The state is the point with `augment_dim` zeros appended (3 by default); a
time-dependent MLP of width `width` moves it over [0, 1]; a linear layer classifies the final state. Metric: test
accuracy (%).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tasks.base import TEST_DATA, TRAIN_DATA, Solver, Task, positive_ints, positive_numbers
from tasks.data.nested_spheres import nested_spheres
from tasks.models.mlp import MLPField


class NestedSpheres(Task):
    metric = "test_accuracy"
    lower_is_better = False

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        width: int = 20,
        augment_dim: int = 3,
        time_length: float = 1.0,
        batch_size: int = 200,
        train_per_class: int = 1000,
        test_per_class: int = 50,
        check_size: int = 16,
    ) -> None:
        super().__init__(seed, device, dtype)
        positive_ints(width=width, batch_size=batch_size, train_per_class=train_per_class,
                      test_per_class=test_per_class, check_size=check_size)
        if augment_dim < 0:
            raise ValueError(f"task.augment_dim must be at least 0, got {augment_dim}")
        positive_numbers(time_length=time_length)
        self.dataset = "nested_spheres (generated)"
        self.batch_size = min(batch_size, 2 * train_per_class)
        self.augment_dim = augment_dim
        self.check_size = check_size
        self.field = MLPField(2 + augment_dim, width).to(device, dtype)
        self.decoder = nn.Linear(2 + augment_dim, 2).to(device, dtype)
        self.model = nn.ModuleDict({"field": self.field, "decoder": self.decoder})
        self.ts = torch.tensor([0.0, time_length], device=device, dtype=dtype)
        x, y = nested_spheres(train_per_class, self.generator(TRAIN_DATA))
        self.train_x, self.train_y = x.to(device, dtype), y.to(device)
        x, y = nested_spheres(test_per_class, self.generator(TEST_DATA))
        self.test_x, self.test_y = x.to(device, dtype), y.to(device)

    def logits(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        state0 = torch.cat([x, x.new_zeros(len(x), self.augment_dim)], dim=1)
        return self.decoder(solver.solve(self.field, state0, self.ts)[-1])

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        index = self.epoch_batch(len(self.train_x), self.batch_size, step)
        return F.cross_entropy(self.logits(self.train_x[index], solver), self.train_y[index])

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        logits = self.logits(self.test_x, solver)
        return {"test_accuracy": 100.0 * (logits.argmax(1) == self.test_y).double().mean().item(),
                "test_loss": F.cross_entropy(logits, self.test_y).item()}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return F.cross_entropy(self.logits(self.test_x, solver), self.test_y)

    def check_loss(self, solver: Solver) -> torch.Tensor:
        n = self.check_size
        return F.cross_entropy(self.logits(self.train_x[:n], solver), self.train_y[:n])
