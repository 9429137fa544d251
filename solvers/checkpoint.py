"""Recursive checkpointing: memory-bounded backprop through the same discrete solve, with one of two schedules.

`method.schedule=online` is the reversible-solvers paper's baseline (v2): diffrax's RecursiveCheckpointAdjoint, i.e.
equinox's checkpointed while loop, whose forward pass places its checkpoints without knowing the number of steps
(Stumm & Walther's online algorithm, then Wang & Moin's dynamic checkpointing) and whose backward pass bisects
between them (solvers/online_checkpoint.py; fixed and adaptive steps alike).

`method.schedule=offline` (the default) is the binomial ("Revolve") schedule. With `checkpoints` = c
stored states (the initial state counts as one), reversing n steps follows Griewank's binomial schedule, which
recomputes the fewest steps possible with c states: R(n, c) = t*n - C(c+t, t-1) extra steps, where t is the least
integer with C(c+t, t) >= n (Griewank 1992; Griewank & Walther 2000). Each segment [a, b) whose start state is held
is reversed by advancing to an optimal split point m (stored), reversing [m, b) with one state fewer, then [a, m)
with the state freed again. The optimal split points form the interval

    max(C(c+t-2, c), n - C(c+t-1, c-1), 1)  <=  m - a  <=  min(C(c+t-1, c), n - C(c+t-2, c-1), n - 1)

(checked against a brute-force dynamic programme in tests/test_checkpoint.py); we take the upper end. The forward
pass itself stores the checkpoints of the schedule's first descent, so those cost no recomputation; each step is
then run once more with a graph in the backward pass for its local VJP. checkpoints=1 recomputes from the start for
every step (quadratic); `checkpoints: null` stores every step.

With adaptive steps the grid is known only at the end of the forward pass, so all checkpoints are placed in the
backward pass (one extra sweep of the steps; diffrax uses online treeverse there instead). The gradient is that of
the discrete forward solve, equal to direct backprop through the same steps up to round-off.
"""

from __future__ import annotations

from math import comb
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from solvers import online_checkpoint
from solvers.base import SolverSpec, SteppingMethod, trainable
from solvers.core import OutputGradients, PlainStepper, Schedule
from solvers.nfe import report_step

SCHEDULES = ("offline", "online")


def _beta(c: int, t: int) -> int:
    return comb(c + t, c) if t >= 0 else 0


def repetitions(n: int, free: int) -> int:
    """t: the least number of times any step is advanced to reverse n steps with `free` states besides the start."""
    t = 0
    while _beta(free + 1, t) < n:
        t += 1
    return t


def recomputations(n: int, free: int) -> int:
    """Steps advanced (beyond the n grad steps) to reverse n steps from a held start state with `free` more states."""
    if n <= 1:
        return 0
    if free == 0:
        return n * (n - 1) // 2
    t = repetitions(n, free)
    return t * n - _beta(free + 2, t - 1)


def split(n: int, free: int) -> int:
    """An optimal first advance (1 <= m < n) for reversing n >= 2 steps with `free` >= 1 states to spare."""
    c, t = free + 1, repetitions(n, free)
    return min(_beta(c, t - 1), n - _beta(free, t - 1), n - 1)


def first_descent(n: int, free: int) -> list[int]:
    """Grid indices the schedule stores first (each split of the rightmost segment): the forward pass keeps them."""
    stored, a = [], 0
    while free > 0 and n - a >= 2:
        a += split(n - a, free)
        stored.append(a)
        free -= 1
    return stored


def backward_recomputations(n: int, free: int) -> int:
    """Steps the backward pass advances without a graph (fixed steps): the schedule's recomputations less its first
    descent, which the forward pass stores as it goes."""
    stored = first_descent(n, free)
    return recomputations(n, free) - (stored[-1] if stored else 0)


def _save(ctx, stepper: PlainStepper, grid, params: tuple[torch.Tensor, ...], kept: dict[int, torch.Tensor],
          outputs: list[torch.Tensor], **settings: Any) -> torch.Tensor:
    """Keep for the backward pass the stepper, the grid, the parameters, the states stored at grid indices and the
    schedule's `settings`; return the outputs stacked (the forward pass's result)."""
    ctx.stepper, ctx.grid, ctx.kept_index, ctx.n_params = stepper, grid, sorted(kept), len(params)
    ctx.settings = settings
    ctx.save_for_backward(*params, *(kept[i] for i in ctx.kept_index))
    return torch.stack(outputs)


def _restore(ctx, grad_ys: torch.Tensor):
    """(stepper, grid times, parameters, stored states by grid index, the output gradients, zeroed parameter
    gradients)."""
    saved = ctx.saved_tensors
    params = tuple(saved[: ctx.n_params])
    states = dict(zip(ctx.kept_index, saved[ctx.n_params :]))
    return (ctx.stepper, ctx.grid.times, params, states, OutputGradients(ctx.grid, grad_ys),
            [torch.zeros_like(p) for p in params])


class _CheckpointedSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stepper: PlainStepper, schedule: Schedule, free: int | None, y0: torch.Tensor,
                *params: torch.Tensor):
        if schedule.grid is not None:
            n = schedule.grid.steps
            free_slots = n if free is None else free
            spine = set(first_descent(n, free_slots))
            kept: dict[int, torch.Tensor] = {}
            outputs, grid = stepper.run(schedule, y0, keep=lambda i, y: kept.__setitem__(i, y) if i in spine else None,
                                        keep_at=spine)
        else:
            outputs, grid = stepper.run(schedule, y0)
            kept = {}
            free_slots = grid.steps if free is None else free
        return _save(ctx, stepper, grid, params, {**kept, 0: y0}, outputs, free=free_slots)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        stepper, times, params, stored, outputs, grads = _restore(ctx, grad_ys)
        y0 = stored.pop(0)

        def grad_step(k: int, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
            adj = outputs.add_to(adj, k + 1)
            adj = stepper.grad_step(times[k], times[k + 1], x, adj, params, grads)
            report_step(stepper.field, True)
            return adj

        def reverse(a: int, b: int, x_a: torch.Tensor, free: int, adj: torch.Tensor) -> torch.Tensor:
            if b - a == 1:
                return grad_step(a, x_a, adj)
            if free == 0:
                for k in range(b - 1, a - 1, -1):
                    adj = grad_step(k, stepper.advance(times, a, k, x_a), adj)
                return adj
            m = a + split(b - a, free)
            x_m = stored.pop(m) if m in stored else stepper.advance(times, a, m, x_a)
            adj = reverse(m, b, x_m, free - 1, adj)
            return reverse(a, m, x_a, free, adj)

        with torch.no_grad():
            adj = reverse(0, len(times) - 1, y0, ctx.settings["free"], torch.zeros_like(y0))
        return (None, None, None, outputs.add_to(adj, 0), *grads)


class _OnlineCheckpointedSolve(torch.autograd.Function):
    """Equinox's checkpointed while loop: checkpoints placed online in the forward pass (any grid), then the
    backward pass of `online_checkpoint.backward_actions`."""

    @staticmethod
    def forward(ctx, stepper: PlainStepper, schedule: Schedule, checkpoints: int, y0: torch.Tensor,
                *params: torch.Tensor):
        slots: dict[int, tuple[int, torch.Tensor]] = {}
        if schedule.grid is not None:  # the placement depends on the step count only: the states it ends with
            final = set(online_checkpoint.forward_stored(schedule.grid.steps, checkpoints))
            outputs, grid = stepper.run(schedule, y0, keep=lambda i, y: slots.__setitem__(i, (i, y)) if i in final
                                        else None, keep_at=final)
        else:
            placement = online_checkpoint.OnlinePlacement(checkpoints)
            pending: list[Any] = [0, y0]

            def keep(index: int, y: torch.Tensor) -> None:  # decide for step index - 1 once it has been taken
                if index > 0:
                    slot = placement.decide(pending[0])
                    if slot is not None:
                        slots[slot] = (pending[0], pending[1])
                pending[:] = (index, y)

            outputs, grid = stepper.run(schedule, y0, keep=keep)
        return _save(ctx, stepper, grid, params, dict(slots.values()), outputs, checkpoints=checkpoints)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        stepper, times, params, states, outputs, grads = _restore(ctx, grad_ys)
        actions = online_checkpoint.backward_actions(len(times) - 1, ctx.kept_index, ctx.settings["checkpoints"])
        x = None
        with torch.no_grad():
            adj = torch.zeros_like(states[0])
            for kind, a, b in actions:
                if kind == "advance":
                    x = stepper.advance(times, a, b, x)
                elif kind == "push":
                    states[a] = x
                elif kind == "uturn":
                    adj = outputs.add_to(adj, a + 1)
                    adj = stepper.grad_step(times[a], times[a + 1], x, adj, params, grads)
                    report_step(stepper.field, True)
                else:  # load, or pop (the slot is freed)
                    x = states.pop(a) if kind == "pop" else states[a]
        return (None, None, None, outputs.add_to(adj, 0), *grads)


class RecursiveCheckpoint(SteppingMethod):
    """Recursive checkpointing over the tableau `solver=` names; `checkpoints` states stored (null: every step),
    placed by the `offline` binomial schedule or by diffrax's `online` one."""

    name = "checkpoint"

    def __init__(self, solver: SolverSpec, norm: str = "default", checkpoints: int | None = 8,
                 schedule: str = "offline", compile: bool = False) -> None:
        super().__init__(solver, norm, compile=compile)
        if checkpoints is not None and (not isinstance(checkpoints, int) or checkpoints < 1):
            raise ValueError(f"method.checkpoints must be a positive integer or null, got {checkpoints!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"method.schedule={schedule!r} is not a choice; choose one of {', '.join(SCHEDULES)}")
        self.checkpoints = checkpoints
        self.schedule = schedule

    def _run(self, stepper: PlainStepper, schedule: Schedule, y0: torch.Tensor) -> torch.Tensor:
        params = trainable(stepper.field)
        if self.schedule == "online" and self.checkpoints is not None:
            return _OnlineCheckpointedSolve.apply(stepper, schedule, self.checkpoints, y0, *params)
        free = None if self.checkpoints is None else self.checkpoints - 1
        return _CheckpointedSolve.apply(stepper, schedule, free, y0, *params)

    def describe(self) -> dict[str, Any]:
        return {"checkpoints": self.checkpoints, "schedule": self.schedule, **super().describe()}
