"""Continuous normalising flow on FFJORD's 2-D toy densities (exact divergence; test metric: test NLL in nats)."""

from __future__ import annotations

import torch

from tasks.base import Solver, Task
from tasks.cnf import CNFField, ConcatSquashNet, standard_normal_logprob
from tasks.toy_data import TOY_DENSITIES


class CNFToy(Task):
    metric = "test_nll"
    lower_is_better = True

    def __init__(
        self,
        seed: int,
        device: torch.device,
        dtype: torch.dtype,
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
        for key, value in (("hidden", hidden), ("num_layers", num_layers), ("batch_size", batch_size),
                           ("test_size", test_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ValueError(f"task.{key} must be at least 1, got {value}")
        if time_length <= 0:
            raise ValueError(f"task.time_length must be positive, got {time_length}")
        self.sample = TOY_DENSITIES[density]
        self.dataset = f"ffjord_toy:{density} (generated)"
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        torch.manual_seed(seed)
        self.field = CNFField(ConcatSquashNet(2, hidden, num_layers), dim=2).to(device, dtype)
        self.model = self.field
        self.ts = torch.tensor([0.0, time_length], device=device, dtype=dtype)
        self.test_x = self._to(self.sample(test_size, self.generator(-1)))
        self.check_x = self._to(self.sample(check_size, self.generator(-2)))

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, self.dtype)

    def nll(self, x: torch.Tensor, solver: Solver) -> torch.Tensor:
        """Mean negative log-likelihood of the points x under the flow."""
        state0 = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
        state_T = solver.solve(self.field, state0, self.ts)[-1]
        logp = standard_normal_logprob(state_T[:, :2]) + state_T[:, 2]
        return -logp.mean()

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
