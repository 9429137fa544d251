"""The step-size controller and the adaptive step loop (the counterpart of diffrax's `_step_size_controller/`).

`StepController` is the standard integral controller of torchdiffeq and diffrax: an RMS error norm (or any norm of
the scaled error, e.g. an adjoint's norm over its channels), a step accepted when the scaled error is at most 1, the
next step from the error ratio. `adaptive_steps` drives any scheme's trial step with it, reports each accepted and
rejected step to the field (the NFE counter counts them, as it counts torchdiffeq's), and raises `SolverFailed` where
the solve cannot go on (the step budget spent, the step underflowed). `WarmStart` carries the step one solve ended
with into the next (a backward pass restarted at every observation time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from solvers.core.terms import Term
from solvers.errors import SolverFailed
from solvers.nfe import report_step

# try_step(t, h, state) -> (new_state, error estimate, y before, y after): one trial step of size h (signed) from t.
TrialStep = Callable[[float, float, Any], tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]]
# A norm of the scaled error (error / tolerance, per element) -> a 0-d tensor; a step is accepted when it is <= 1.
ErrorNorm = Callable[[torch.Tensor], torch.Tensor]


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """The controller's default error norm: one RMS over every element."""
    return torch.sqrt(torch.mean(x**2))


class WarmStart:
    """The warm start of a solve restarted at several times: each solve begins with the step the previous one ended
    with, instead of the initial-step selection (Hairer, Norsett & Wanner's, as torchdiffeq and the controller below
    choose it: two field evaluations, and a step that is usually far smaller than needed and takes several steps to
    grow). An adjoint's backward pass restarts its solve at every observation time, where the adjoint jumps; the
    first backward solve starts with the forward solve's last step.

    The one home of the rule, for every method whose adaptive backward solve the harness controls (`method=gq`, which
    solves through torchdiffeq, and `method=adjoint_core`, which solves through `adaptive_steps`; each has the knob
    `method.warm_start`). `record(h)` takes the size the controller chose for each accepted step (before a step is
    cut short to land on an output time; torchdiffeq never cuts, it interpolates); `first_step(span)` gives the next
    solve's first step, at most the solve's span (None: no warm start, the solver picks its own)."""

    def __init__(self, enabled: bool = True, step: float | None = None) -> None:
        self.enabled = enabled
        self.step = None if step is None else abs(float(step))

    def record(self, step: float) -> None:
        self.step = abs(float(step))

    def first_step(self, span: float) -> float | None:
        if not self.enabled or not self.step:
            return None
        return min(self.step, abs(float(span)))

    def watch(self, field: Any) -> _WatchedField:
        """`field` for a solver that reports accepted steps as torchdiffeq does (`callback_step(t0, y0, dt)`): calls
        and callbacks pass through, and each accepted step's size is recorded here."""
        return _WatchedField(field, self)


class _WatchedField:
    def __init__(self, field: Any, warm_start: WarmStart) -> None:
        self.field, self.warm_start = field, warm_start
        self._step = getattr(field, "callback_step", None)
        if hasattr(field, "callback_reject_step"):
            self.callback_reject_step = field.callback_reject_step

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.field(t, y)

    def callback_step(self, t0, y0, dt) -> None:
        self.warm_start.record(dt)
        if self._step is not None:
            self._step(t0, y0, dt)


class StepController:
    """Adaptive step sizes from an embedded error estimate: accept when the RMS of err / (atol + rtol * max(|y0|,
    |y1|)) is at most 1; the next step is h * clip(safety * ratio^(-1/(q+1)), dfactor, ifactor), q the lower of the
    pair's two orders (the standard integral controller; torchdiffeq's and diffrax's defaults). `norm` replaces the
    RMS, in the acceptance test and in the initial-step selection alike, as torchdiffeq's `options["norm"]` does."""

    def __init__(self, rtol: float, atol: float, order: int, max_num_steps: int | None = None,
                 safety: float = 0.9, ifactor: float = 10.0, dfactor: float = 0.2,
                 norm: ErrorNorm | None = None) -> None:
        self.rtol, self.atol, self.order = rtol, atol, order
        self.max_num_steps = max_num_steps or 100000
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor
        self.norm = norm or rms_norm

    def ratio(self, err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor) -> float:
        err, y0, y1 = err.detach(), y0.detach(), y1.detach()
        scale = self.atol + self.rtol * torch.maximum(y0.abs(), y1.abs())
        return float(self.norm(err / scale))

    def next_step(self, h: float, ratio: float) -> float:
        if ratio == 0:
            return h * self.ifactor
        if not math.isfinite(ratio):
            return h * self.dfactor
        factor = self.safety * ratio ** (-1.0 / (self.order + 1))
        return h * min(self.ifactor, max(self.dfactor, factor))

    def initial_step(self, term: Term, t0: float, y0: torch.Tensor, direction: float) -> float:
        """Hairer, Nørsett & Wanner's starting step (two field evaluations), as torchdiffeq chooses it."""
        y0 = y0.detach()
        t = torch.as_tensor(t0, dtype=y0.dtype, device=y0.device)
        with torch.no_grad():
            f0 = term(t, y0, 1.0, None)
        scale = self.atol + self.rtol * y0.abs()
        d0 = float(self.norm(y0 / scale))
        d1 = float(self.norm(f0 / scale))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        y1 = y0 + direction * h0 * f0
        with torch.no_grad():
            f1 = term(t + direction * h0, y1, 1.0, None)
        d2 = float(self.norm((f1 - f0) / scale)) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (self.order + 1))
        return min(100 * h0, h1)


def adaptive_steps(
    try_step: TrialStep,
    state: Any,
    times: list[float],
    controller: StepController,
    first_step: float,
    on_accept: Callable[[int, float, Any], None],
    field: Any = None,
    land: bool = True,
    warm_start: WarmStart | None = None,
) -> tuple[list[float], Any]:
    """Drive `try_step(t, h, state) -> (new_state, err, y_old, y_new)` from times[0] to times[-1] with adaptive
    steps that land on every output time (`land`) or only on the last; `on_accept(grid_index, t, state)` sees each
    accepted state; `warm_start` records the size chosen for each accepted step. Returns the accepted step times (the
    grid) and the final state."""
    direction = 1.0 if times[-1] > times[0] else -1.0
    t, h = times[0], abs(first_step)
    grid = [t]
    on_accept(0, t, state)
    for target in times[1:] if land else times[-1:]:
        while direction * (target - t) > 0:
            if len(grid) > controller.max_num_steps:
                raise SolverFailed(f"max_num_steps exceeded ({controller.max_num_steps})")
            remaining = abs(target - t)
            last = h >= remaining * (1 - 1e-12)
            step = remaining if last else h
            new_state, err, y_old, y_new = try_step(t, direction * step, state)
            ratio = controller.ratio(err, y_old, y_new)
            if ratio <= 1:
                report_step(field, True)
                if warm_start is not None:
                    warm_start.record(h)
                t = target if last else t + direction * step
                state = new_state
                grid.append(t)
                on_accept(len(grid) - 1, t, state)
                h = controller.next_step(step, ratio)
            else:
                report_step(field, False)
                h = controller.next_step(step, ratio)
            if h < 1e-12 * max(1.0, abs(t)):
                raise SolverFailed(f"underflow in dt {h}")
    return grid, state
