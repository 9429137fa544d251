"""A solve's schedule, the one stepping loop, and the plain stepper (the counterpart of torchdiffeq's rk_common.py).

Every method that steps itself (direct_rk, checkpoint, reversible, MALI) runs its forward solve through `integrate`:
the loop over a fixed grid, or under the step-size controller, with the outputs gathered and every accepted step
reported to the field. A method brings only its `Stepper`, which says what one step does to its state (a tensor y;
the reversible pair (y, z); MALI's (z, v)), so the loop is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import torch

from solvers.core.autodiff import accumulate, vjp
from solvers.core.compiled import CompiledPlainSteps, Compiler
from solvers.core.controller import StepController, WarmStart, adaptive_steps
from solvers.core.grids import Grid, OutputCollector, check_times, fixed_grid
from solvers.core.terms import Term, brownian_increment, rk_increment
from solvers.nfe import report_step
from solvers.tableaus import Tableau

State = TypeVar("State")


class Schedule:
    """How a solve steps: a fixed `grid`, or a `controller` (adaptive) that finds the grid as it goes; an adaptive
    solve with a `warm_start` starts with the step the previous solve recorded there, and records its own."""

    def __init__(self, times: list[float], grid: Grid | None, controller: StepController | None,
                 first_step: float | None, land: bool = True, warm_start: WarmStart | None = None) -> None:
        self.times, self.grid, self.controller, self.first_step = times, grid, controller, first_step
        self.land, self.warm_start = land, warm_start

    @classmethod
    def fixed(cls, ts: torch.Tensor, step_size: float | None) -> Schedule:
        """Equal steps no longer than `step_size` between the output times `ts` (see `fixed_grid`)."""
        times = check_times(ts)
        return cls(times, fixed_grid(times, step_size), None, None)

    @classmethod
    def build(cls, spec: Any, tableau: Tableau, ts: torch.Tensor) -> Schedule:
        """From a `solvers.base.SolverSpec` (name, step_size or rtol/atol, max_num_steps, options.first_step)."""
        if not spec.adaptive:
            return cls.fixed(ts, spec.step_size)
        controller = StepController(spec.rtol, spec.atol, min(tableau.order, tableau.embedded_order),
                                    spec.max_num_steps)
        outputs = spec.options.get("outputs", "land")
        if outputs not in ("land", "interpolate"):
            raise ValueError(f"solver.options.outputs={outputs!r} is not a choice; choose land or interpolate")
        return cls(check_times(ts), None, controller, spec.options.get("first_step"), land=outputs == "land")

    @property
    def direction(self) -> float:
        return 1.0 if self.times[-1] > self.times[0] else -1.0

    def first(self, term: Term, y0: torch.Tensor) -> float:
        """The first adaptive step: the warm start's, else `solver.options.first_step`, else the controller's choice
        from the field."""
        warm = self.warm_start.first_step(self.times[-1] - self.times[0]) if self.warm_start is not None else None
        if warm is not None:
            return warm
        if self.first_step is not None:
            return float(self.first_step)
        return self.controller.initial_step(term, self.times[0], y0, self.direction)


class Stepper(Protocol[State]):
    """What `integrate` needs of a scheme: one step of its state, and the solution y a state carries; `field`
    receives the step callbacks (the NFE counter's wrapper; None for an uncounted solve). Adaptive schedules also
    need the step with its error estimate and the `term` the controller takes its first step from (a fixed-step-only
    scheme, such as MALI's, leaves both out)."""

    term: Term
    field: Any

    def step(self, t0: float, t1: float, state: State) -> State: ...

    def step_with_error(self, t0: float, t1: float, state: State) -> tuple[State, torch.Tensor]: ...

    def solution(self, state: State) -> torch.Tensor: ...


def integrate(stepper: Stepper[State], schedule: Schedule, state: State,
              keep: Callable[[int, State], None] | None = None,
              keep_at: set[int] | None = None) -> tuple[list[torch.Tensor], State, Grid]:
    """The one stepping loop: solve from `state` at schedule.times[0] under the current grad mode, over the fixed
    grid or with adaptive steps. Returns (the solution at every output time, the final state, the grid taken);
    `keep(index, state)` sees every accepted state (grid index 0 is the initial one), or, on a fixed grid with
    `keep_at` given, those at the grid indices `keep_at` (at least).

    On a fixed grid a stepper with `steps(times, start, stop, state)` (several steps at once: the compiled core's
    loop) is run from one grid index that matters (an output, a state to keep) to the next."""
    collector = OutputCollector(schedule.times)
    solution = stepper.solution

    def accept(index: int, t: float, state: State) -> None:
        if keep is not None:
            keep(index, state)
        collector.accept(index, t, solution(state))

    if schedule.grid is not None:
        times, step, field = schedule.grid.times, stepper.step, stepper.field
        accept(0, times[0], state)
        steps = getattr(stepper, "steps", None)
        if steps is not None and (keep is None or keep_at is not None):
            marks = sorted({*schedule.grid.outputs, *(keep_at or ()), len(times) - 1} - {0})
            start = 0
            for stop in marks:
                state = steps(times, start, stop, state)
                accept(stop, times[stop], state)
                start = stop
            return collector.values, state, collector.grid(times)
        for n in range(len(times) - 1):
            state = step(times[n], times[n + 1], state)
            report_step(field, True)
            accept(n + 1, times[n + 1], state)
        return collector.values, state, collector.grid(times)

    def try_step(t: float, h: float, state: State):
        new_state, err = stepper.step_with_error(t, t + h, state)
        return new_state, err, solution(state), solution(new_state)

    first = schedule.first(stepper.term, solution(state))
    accepted, state = adaptive_steps(try_step, state, schedule.times, schedule.controller, first, accept,
                                     stepper.field, schedule.land, schedule.warm_start)
    return collector.values, state, collector.grid(accepted)


def step_through(stepper: Any, times: list[float], start: int, stop: int, state: State) -> State:
    """A stepper's state at times[stop] from its state at times[start], each step reported to its field: one compiled
    loop (`stepper.compiled.steps`) when the stepper is compiled and no graph is being recorded, else step by step."""
    compiled = getattr(stepper, "compiled", None)
    if compiled is not None and not torch.is_grad_enabled():
        return compiled.steps(times, start, stop, state)
    for n in range(start, stop):
        state = stepper.step(times[n], times[n + 1], state)
        report_step(stepper.field, True)
    return state


class PlainStepper:
    """y_{n+1} = y_n + Psi_h(t_n, y_n): the base scheme itself (direct_rk, checkpointing). Its state is y.

    Public per-step pieces, for the methods' backward passes and for cost models that time single steps
    (runs.bench's reversible section): `step` (one base step), `advance` (several, without outputs) and `grad_step`
    (one step re-taken with a graph and pulled back: checkpointing's backward step)."""

    def __init__(self, term: Term, tableau: Tableau, bm: Any = None, field: Any = None,
                 compiler: Compiler | None = None) -> None:
        self.term, self.tableau, self.bm, self.field = term, tableau, bm, field
        self.compiled = None if compiler is None else CompiledPlainSteps(compiler, field, tableau)

    def _increment(self, t0: float, t1: float, y: torch.Tensor, error: bool):
        t = torch.full((), t0, dtype=y.dtype, device=y.device)
        return rk_increment(self.term, self.tableau, t, t1 - t0, y, brownian_increment(self.bm, t0, t1), error, base=y)

    def step(self, t0: float, t1: float, y: torch.Tensor) -> torch.Tensor:
        """y_{n+1} from y_n = y over [t0, t1]."""
        if self.compiled is not None:
            return self.compiled.step(t0, t1, y)
        return self._increment(t0, t1, y, False)

    def steps(self, times: list[float], start: int, stop: int, y: torch.Tensor) -> torch.Tensor:
        """y at times[stop] from y at times[start] under the current grad mode, each step reported to the field
        (one compiled loop when compiled and no graph is being recorded)."""
        return step_through(self, times, start, stop, y)

    def step_with_error(self, t0: float, t1: float, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_{n+1}, the tableau's local error estimate)."""
        return self._increment(t0, t1, y, True)

    def solution(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def grad_step(self, t0: float, t1: float, y: torch.Tensor, adj: torch.Tensor, params: tuple[torch.Tensor, ...],
                  grads: list[torch.Tensor]) -> torch.Tensor | None:
        """The adjoint of y_n from adj, that of y_{n+1}: re-take the step from y_n with a graph and pull adj back
        through it (one local VJP), adding the parameter gradient into `grads` in place (checkpointing's backward
        step; the bench times it as one cost unit)."""
        if self.compiled is not None:
            g = self.compiled.grad_step(t0, t1, y, adj, params)
        else:
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                y1 = self.step(t0, t1, y_)
            g = vjp(y1, (y_, *params), adj)
        accumulate(grads, g[1:])
        return g[0]

    def advance(self, times: list[float], start: int, stop: int, y: torch.Tensor) -> torch.Tensor:
        """y at times[stop] from y at times[start], stepping the grid `times` without a graph (each step reported
        to the field)."""
        with torch.no_grad():
            return self.steps(times, start, stop, y)

    def run(self, schedule: Schedule, y0: torch.Tensor, keep: Callable[[int, torch.Tensor], None] | None = None,
            keep_at: set[int] | None = None):
        """Solve under the current grad mode: (outputs at ts, grid); `keep(index, y)` sees every grid state (or, on
        a fixed grid, those at `keep_at`; see `integrate`)."""
        outputs, _, grid = integrate(self, schedule, y0, keep, keep_at)
        return outputs, grid
