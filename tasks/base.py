"""What every task provides: data, a model, a training loss and a test metric.

A task knows nothing about adjoints. Every differential-equation solve goes through the `Solver` it is handed
(a gradient method from `solvers/`, joined to the task by `runs`), so the same task trains under every method.

To add a task: subclass `Task` in a new file of this package and add `conf/task/<name>.yaml` (with `_target_`
naming the class) plus `conf/task_scale/<name>/{smoke,quick,paper}.yaml`.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Protocol

import torch
from torch import nn


class DataUnavailable(FileNotFoundError):
    """A task's data is neither on disk nor downloadable here (e.g. no network); the message says where to put it."""


class Solver(Protocol):
    """The part of a gradient method a task may use."""

    def solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
              jump_t: torch.Tensor | None = None) -> torch.Tensor: ...

    def solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor: ...


class Task(abc.ABC):
    """One learning problem.

    Class attributes:
      metric          - name of the headline test metric, a key of `evaluate()`'s result (e.g. "test_nll")
      lower_is_better - direction of that metric
    Instance attributes (set by the subclass's __init__):
      model    - an nn.Module holding every trainable parameter
      dataset  - which data this run actually used; a stand-in says so, so it is never taken for the paper's data
    """

    metric: ClassVar[str]
    lower_is_better: ClassVar[bool] = True
    model: nn.Module
    dataset: str

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype) -> None:
        self.seed = seed
        self.device = device
        self.dtype = dtype

    def generator(self, *salt: int) -> torch.Generator:
        """A CPU generator that depends only on the run's seed and `salt` (e.g. the step): batches are a pure
        function of (seed, step), so a resumed run sees exactly the batches an uninterrupted one would."""
        g = torch.Generator()
        g.manual_seed(hash((self.seed, *salt)) % (2**63))
        return g

    def epoch_batch(self, n: int, batch_size: int, step: int) -> torch.Tensor:
        """Indices (on the task's device) of training step `step`'s batch when every epoch is a fresh permutation of
        the n training items (the last batch of an epoch may be smaller): a pure function of (seed, step)."""
        per_epoch = math.ceil(n / batch_size)
        epoch, k = divmod(step, per_epoch)
        order = torch.randperm(n, generator=self.generator(-10, epoch))
        return order[k * batch_size:(k + 1) * batch_size].to(self.device)

    @abc.abstractmethod
    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        """Scalar training loss on the batch of training step `step`."""

    @abc.abstractmethod
    def evaluate(self, solver: Solver) -> dict[str, float]:
        """Test metrics (under torch.no_grad); must contain `self.metric`."""

    def check_loss(self, solver: Solver) -> torch.Tensor | None:
        """A deterministic scalar loss on a small fixed batch, used to measure a method's gradient error against
        a float64 reference. None where no cheap deterministic loss exists."""
        return None

    def eval_loss(self, solver: Solver) -> torch.Tensor | None:
        """A differentiable loss on held-out data, for counting backward NFE on data the model was not fitted to
        (the seminorm paper's measurement). None to skip."""
        return None


class FullBatchTask(Task):
    """A task whose whole (small) data set is one deterministic batch, as in the trajectory-fitting experiments:
    one `loss` serves as training loss, test metric and gradient-check loss."""

    metric = "mse"

    @abc.abstractmethod
    def loss(self, solver: Solver) -> torch.Tensor:
        """The scalar loss on the whole data set."""

    def train_loss(self, step: int, solver: Solver) -> torch.Tensor:
        return self.loss(solver)

    @torch.no_grad()
    def evaluate(self, solver: Solver) -> dict[str, float]:
        return {self.metric: self.loss(solver).item()}

    def check_loss(self, solver: Solver) -> torch.Tensor:
        return self.loss(solver)
