"""Function-evaluation counting: the one place where NFE and solver steps are counted.

Every gradient method wraps the task's vector field with `NFECounter.wrap` (the base class does it, so a
method cannot forget). A call counts as *backward* when autograd is running a backward pass at that moment,
and as *forward* otherwise. That rule gives the counts the same meaning for every method: direct backprop has
zero backward NFE (autograd replays recorded ops, it never calls the field), the continuous adjoint counts its
whole backward solve, checkpointing counts its recomputation.

Steps are counted through torchdiffeq's step callbacks with the same forward/backward rule; rejected steps
exist only for adaptive solvers (accepted = attempted - rejected).

The public API for code that solves with a counted field (a method, the stepping core):
- `counter_of(field)`: the `NFECounter` a counted field reports to (None when nobody counts it);
- `unwrap(field)`: the task's own module inside the counting wrapper (for torch.func.vmap, which must see the
  module itself; calls made on it are not counted, so count them with `add_evaluations`);
- `NFECounter.add_evaluations(n)`: n evaluations at once (e.g. GQ's quadrature nodes, evaluated in batched calls);
- `report_step(field, accepted)`: a step taken by a solver of our own, reported as torchdiffeq reports its steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn


def in_backward() -> bool:
    """True while autograd is executing a backward pass (in this thread)."""
    return torch._C._current_graph_task_id() != -1


@dataclass
class NFECounts:
    """Counts since the last reset: field evaluations and solver steps, split forward/backward."""

    fwd_nfe: int = 0
    bwd_nfe: int = 0
    fwd_steps: int = 0
    fwd_rejected: int = 0
    bwd_steps: int = 0
    bwd_rejected: int = 0

    def __add__(self, other: NFECounts) -> NFECounts:
        return NFECounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class NFECounter:
    """Accumulates `NFECounts` for every field it wrapped; `take()` returns them and starts afresh."""

    def __init__(self) -> None:
        self.counts = NFECounts()

    def take(self) -> NFECounts:
        counts, self.counts = self.counts, NFECounts()
        return counts

    def evaluation(self) -> None:
        """Count one field evaluation (the counted field's every call: written out rather than through
        `add_evaluations(1)`, which would add a call to the hot path)."""
        if in_backward():
            self.counts.bwd_nfe += 1
        else:
            self.counts.fwd_nfe += 1

    def add_evaluations(self, n: int) -> None:
        """Count n field evaluations (backward ones while autograd runs a backward pass), e.g. n evaluations made
        in one batched call of the unwrapped field."""
        if in_backward():
            self.counts.bwd_nfe += n
        else:
            self.counts.fwd_nfe += n

    def step(self) -> None:
        if in_backward():
            self.counts.bwd_steps += 1
        else:
            self.counts.fwd_steps += 1

    def rejected(self) -> None:
        if in_backward():
            self.counts.bwd_rejected += 1
        else:
            self.counts.fwd_rejected += 1

    def wrap(self, field: nn.Module, adaptive: bool) -> nn.Module:
        """The field, counted. `adaptive` says whether the solver has accept/reject steps to count."""
        return (CountedAdaptiveField if adaptive else CountedField)(field, self)

    def wrap_sde(self, sde: nn.Module) -> nn.Module:
        """A torchsde SDE, counted: one evaluation per drift call (`f` or `f_and_g`)."""
        return CountedSDE(sde, self)


class CountedField:
    """A vector field `f(t, y)` that reports each call, and each solver step, to its counter.

    A plain callable rather than an nn.Module: a module call costs several microseconds, which shows in the harness's
    overhead on small fields. `parameters()` passes through, so methods can still find the field's parameters.
    """

    def __init__(self, field: nn.Module, counter: NFECounter) -> None:
        self.field = field
        self.counter = counter

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.counter.evaluation()
        return self.field(t, y)

    def parameters(self):
        return self.field.parameters()

    # torchdiffeq calls these (the *_adjoint ones from inside odeint_adjoint's backward solve).
    def callback_step(self, t0, y0, dt) -> None:
        self.counter.step()

    callback_step_adjoint = callback_step


class CountedAdaptiveField(CountedField):
    def callback_reject_step(self, t0, y0, dt) -> None:
        self.counter.rejected()

    callback_reject_step_adjoint = callback_reject_step


class CountedSDE(nn.Module):
    """torchsde's SDE protocol (f, g, f_and_g, ...) with each drift evaluation counted."""

    def __init__(self, sde: nn.Module, counter: NFECounter) -> None:
        super().__init__()
        self.sde = sde
        self.counter = counter
        self.noise_type = sde.noise_type
        self.sde_type = sde.sde_type

    def f(self, t, y):
        self.counter.evaluation()
        return self.sde.f(t, y)

    def g(self, t, y):
        return self.sde.g(t, y)

    def f_and_g(self, t, y):
        self.counter.evaluation()
        if hasattr(self.sde, "f_and_g"):
            return self.sde.f_and_g(t, y)
        return self.sde.f(t, y), self.sde.g(t, y)


def counter_of(field: object) -> NFECounter | None:
    """The counter a field wrapped by `NFECounter.wrap` or `wrap_sde` reports to; None for a field nobody counts."""
    return field.counter if isinstance(field, (CountedField, CountedSDE)) else None


def unwrap(field: object) -> object:
    """The task's own module inside a counting wrapper (the field itself when it is not wrapped). Its calls are not
    counted: count them with `counter_of(field).add_evaluations(n)`."""
    if isinstance(field, CountedField):
        return field.field
    if isinstance(field, CountedSDE):
        return field.sde
    return field


def report_step(field: object, accepted: bool = True) -> None:
    """Report one step of a solver of our own to the field's step callbacks, as torchdiffeq reports its steps
    (`callback_step`, or `callback_reject_step` for a rejected one): a counted field counts it, any other field
    that has the callback sees it, and a field without it is left alone."""
    callback = getattr(field, "callback_step" if accepted else "callback_reject_step", None)
    if callback is not None:
        callback(None, None, None)
