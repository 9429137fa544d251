"""Continuous normalising flow on FFJORD's 2-D toy densities (exact divergence; test metric: test NLL in nats)."""

from __future__ import annotations

import torch

from tasks.base import CNF_TOY_CHECK_DATA, CNF_TOY_TEST_DATA, Solver, Task, positive_ints, positive_numbers
from tasks.data.toy_densities import TOY_DENSITIES
from tasks.models.cnf import CNFField, ConcatSquashNet, flow_nll


class CNFToy(Task):
    metric = "test_nll"

    def __init__(
        self, seed: int, device: torch.device, dtype: torch.dtype,
        density: str = "pinwheel",
        hidden: int = 64,
        num_layers: int = 3,
        time_length: float = 0.5,
        batch_size: int = 100,
        test_size: int = 5000,
        eval_batch_size: int = 1000,
        check_size: int = 16,
    ) -> None:
        super().__init__(seed, device, dtype)
        if density not in TOY_DENSITIES:
            raise ValueError(f"task.density={density!r} is not a toy density; choose one of {', '.join(TOY_DENSITIES)}")
        positive_ints(hidden=hidden, num_layers=num_layers, batch_size=batch_size, test_size=test_size,
                      eval_batch_size=eval_batch_size)
        positive_numbers(time_length=time_length)
        self.sample = TOY_DENSITIES[density]
        self.dataset = f"ffjord_toy:{density} (generated)"
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.field = CNFField(ConcatSquashNet(2, hidden, num_layers), dim=2).to(device, dtype)
        self.model = self.field
        self.ts = torch.tensor([0.0, time_length], device=device, dtype=dtype)
        self.test_x = self._to(self.sample(test_size, self.generator(CNF_TOY_TEST_DATA)))
        self.check_x = self._to(self.sample(check_size, self.generator(CNF_TOY_CHECK_DATA)))

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, self.dtype)

    def nll(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        """Mean negative log-likelihood of the points x under the flow."""
        return flow_nll(self.field, x, self.ts, solver.solve)

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        return self.nll(self._to(self.sample(self.batch_size, self.generator(step))), solver)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        chunks = self.test_x.split(self.eval_batch_size)
        total = sum(self.nll(x, solver).item() * len(x) for x in chunks)
        return {"test_nll": total / len(self.test_x)}

    def eval_loss(self, solver: Solver) -> torch.Tensor:
        return self.nll(self.test_x[: self.eval_batch_size], solver)

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.nll(self.check_x, solver)
