"""What every task provides: data, a model, a training loss and a test metric.

A task knows nothing about adjoints. Every differential-equation solve goes through the `Solver` it is handed
(a gradient method from `solvers/`, joined to the task by `runs`), so the same task trains under every method.

To add a task: subclass `Task` in a new file of this package (its data loader in `tasks/data/`, its networks in
`tasks/models/` where they are more than a line or two) and add `conf/task/<name>.yaml` (with `_target_` naming the
class), plus `conf/task_scale/<name>/<scale>.yaml` for whatever differs at a scale from `conf/scale/<scale>.yaml`.

A constructor does not seed the global RNG: `runs.loop.run` seeds torch, numpy and random with the run's seed right
before it builds the task, so the model's initial parameters are a function of the seed (and a constructor must not
draw from the global RNG before it builds its model). Data and noise never come from the global RNG: they come from
`Task.generator(salt)` (see the seed salts below) or from fixed seeds of their own, so they do not depend on what ran
before.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

# Seed salts. `Task.generator(*salt)` seeds a generator with hash((seed, *salt)), so a salt names one fixed random
# stream of a run's seed. Training step k uses salt k (0, 1, 2, ...) for its batch and (k, STEP_...) for further draws
# of that step; every other stream has a negative salt, which no step can be. The values decide which data, which
# subsets and which noise a seed draws: change one and every run of that seed sees other data (or other batches), so
# its numbers stop matching earlier runs, their records and the tables made from them. Never change a value. Within
# one task each stream needs its own value; across tasks values repeat (a task draws only its own streams). The
# task-named salts are streams whose values were chosen in that task before these names existed, kept as they were.
TRAIN_DATA = -1  # the training set: points generated, or which items a max_train subset keeps
TEST_DATA = -2  # the test set: points generated, or which items a max_test subset keeps
VAL_DATA = -11  # the validation set: which items a max_test subset keeps
EPOCH_ORDER = -10  # epoch_batch: epoch e's permutation of the training set is generator(EPOCH_ORDER, e)
STEP_NOISE = 1  # generator(step, STEP_NOISE): a step's noise beside its batch (ou_sde: Wong–Zakai coefficients)
STEP_BROWNIAN = 2  # entropy(step, STEP_BROWNIAN): a step's Brownian motion (ou_sde trained as an SDE)
CNF_TOY_TEST_DATA = -1  # cnf_toy: the test points (its training points are drawn per step)
CNF_TOY_CHECK_DATA = -2  # cnf_toy: the points of the gradient-check loss
SINES_TIMES = -3  # sines: the irregular observation times
CNF_IMAGES_EVAL_NOISE = -3  # cnf_images: dequantisation and Hutchinson noise of the test evaluation
CNF_IMAGES_HELD_OUT_NOISE = -4  # cnf_images: the same noise for the held-out loss (eval_loss)
CNF_IMAGES_CHECK_NOISE = -5  # cnf_images: the same noise for the gradient-check loss
OU_EVAL_NOISE = -5  # ou_sde: the Wong–Zakai ODE's noise coefficients in evaluation
OU_CHECK_NOISE = -6  # ou_sde: the Wong–Zakai ODE's noise coefficients in the gradient-check loss


def positive_ints(**values: int) -> None:
    """The argument check task constructors share: every value (a size, a width, a count) must be at least 1.

    Raises ValueError for the first offender in keyword order, named by its config key (`task.<key>`)."""
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"task.{key} must be at least 1, got {value}")


def positive_numbers(**values: float) -> None:
    """Every value (a length of time, a step size) must be greater than 0; the error names `task.<key>`."""
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"task.{key} must be positive, got {value}")


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

    def entropy(self, *salt: int) -> int:
        """An integer that depends only on the run's seed and `salt`, for libraries seeded by a number rather than
        a generator (torchsde's Brownian motions)."""
        return hash((self.seed, *salt)) % (2**31)

    def subset(self, size: int, salt: int, *items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`items` (tensors indexed alike on dim 0) cut to `size` random items drawn from stream `salt`, or whole
        where `size` is 0 or at least their length (a max_train / max_test setting)."""
        n = len(items[0])
        if not size or size >= n:
            return items
        keep = torch.randperm(n, generator=self.generator(salt))[:size]
        return tuple(item[keep] for item in items)

    def epoch_batch(self, n: int, batch_size: int, step: int) -> torch.Tensor:
        """Indices (on the task's device) of training step `step`'s batch when every epoch is a fresh permutation of
        the n training items (the last batch of an epoch may be smaller): a pure function of (seed, step)."""
        per_epoch = math.ceil(n / batch_size)
        epoch, k = divmod(step, per_epoch)
        order = torch.randperm(n, generator=self.generator(EPOCH_ORDER, epoch))
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

    # Metric passes (train.metric_pass_every; the seminorm authors' protocol): whole splits, forward and backward.
    pass_splits: tuple[str, ...] = ()  # the splits `pass_batches` can go over, e.g. ("train", "val", "test")

    def steps_per_epoch(self) -> int:
        """Training steps that make one pass over the training set (1 where a step is not part of an epoch)."""
        return 1

    def pass_batches(self, split: str, solver: Solver) -> Iterator[tuple[torch.Tensor, int, dict[str, float]]]:
        """Every batch of the whole `split` (one of `pass_splits`), in a fixed order: (its mean loss, differentiable,
        so the caller can run the backward pass and count its NFE; its number of items; per-item metrics summed over
        the batch, e.g. {"accuracy": 87.0}, the number of correct items). The loop averages the losses over items and
        divides the sums by the split's size."""
        raise NotImplementedError(f"{type(self).__name__} has no metric passes")


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
