"""The harness's own explicit Runge–Kutta stepping loop, over the tableaus of `solvers.tableaus`.

Shared by every method that steps itself (reversible, checkpoint, direct_rk, mali): they differ only in what they
keep for the backward pass, so the forward arithmetic is written once, here.

- A *term* turns (t, y, dt, dW) into the increment of one stage: `dt * f(t, y)` for an ODE (CDEs too: their field
  already multiplies by dX/dt), `f(t, y) dt + g(t, y) dW` for a Stratonovich SDE. Writing a stage as an increment
  lets one base step serve ODEs and SDEs, forwards (dt > 0) and backwards (dt < 0, dW -> -dW).
- `rk_increment` is the base step Psi_h(t, y) = sum_i b_i K_i of a tableau, added with a scale onto a base tensor
  (y + Psi, z - Psi, ...) in the same weighted sum (and, when asked, its error estimate).
- Per-step cost matters: on small fields every tensor operation costs about as much as the arithmetic, so the loop
  fuses weights into `torch.add(alpha=)`, skips zero tableau entries, and the memory-bounded methods take their local
  VJPs with `vjp` (autograd's engine without `torch.autograd.grad`'s argument handling) and sum parameter gradients
  with `accumulate` (one fused call).
- Step grids: fixed steps cut each interval between output times into equal steps no longer than `step_size`
  (so every output time is a grid point and outputs need no interpolation); adaptive steps are chosen by
  `StepController` (integral controller, RMS error norm as in torchdiffeq) and are clipped to land on output times,
  or, with `solver.options.outputs: interpolate`, step freely to the last time and give the outputs in between by
  linear interpolation of the accepted steps (what the authors' pendulum experiment does with diffrax's saved
  steps; the step count is then not forced up by many output times).
- Steps are reported to the field's `callback_step` / `callback_reject_step` when it has them (the NFE counter's
  wrapper does), exactly as torchdiffeq reports its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from solvers.errors import SolverFailed
from solvers.tableaus import Tableau

Term = Callable[[torch.Tensor, torch.Tensor, float, "torch.Tensor | None"], torch.Tensor]


class ODETerm:
    """dt * f(t, y): one stage's increment of an ODE (or of a CDE whose field multiplies by dX/dt itself)."""

    def __init__(self, field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.field = field

    def __call__(self, t: torch.Tensor, y: torch.Tensor, dt: float, dw: torch.Tensor | None = None) -> torch.Tensor:
        return self.field(t, y) * dt


class SDETerm:
    """f(t, y) dt + g(t, y) dW for a torchsde SDE (`f_and_g`, `noise_type`); Stratonovich when the scheme is."""

    def __init__(self, sde) -> None:
        self.sde = sde
        self.diagonal = sde.noise_type == "diagonal"

    def __call__(self, t: torch.Tensor, y: torch.Tensor, dt: float, dw: torch.Tensor | None = None) -> torch.Tensor:
        f, g = self.sde.f_and_g(t, y)
        noise = g * dw if self.diagonal else (g @ dw.unsqueeze(-1)).squeeze(-1)
        return f * dt + noise


def _weighted_sum(base: torch.Tensor | None, pairs: Sequence[tuple[int, float]], ks: Sequence[torch.Tensor],
                  scale: float) -> torch.Tensor | None:
    """base + sum_j (w_j * scale) ks[j] over the nonzero (j, w_j) in `pairs` (None when nothing is added and base is
    None). Each term is one torch.add with the weight as its `alpha`, so no separate multiplication is needed."""
    out = base
    for j, w in pairs:
        w = w * scale
        if out is None:
            out = ks[j] if w == 1 else ks[j] * w
        else:
            out = torch.add(out, ks[j], alpha=w)
    return out


def rk_increment(term: Term, tableau: Tableau, t: torch.Tensor, dt: float, y: torch.Tensor,
                 dw: torch.Tensor | None = None, error: bool = False, base: torch.Tensor | None = None,
                 scale: float = 1.0):
    """base + scale * Psi_dt(t, y), where Psi = sum_i b_i K_i is one base step's increment (base=y: the step y + Psi;
    base None: Psi itself). Folding base and scale into the weighted sum of the stages saves the separate "form Psi,
    then add it" operations: on small fields every tensor operation (and autograd node) costs about as much as the
    arithmetic. With `error`, also the local error estimate sum_i (b_i - b_embedded_i) K_i (every stage is evaluated;
    neither base nor scale applies to it); without it, trailing zero-weight stages are skipped. Returns the result, or
    (result, error estimate). For an ODE the stages are the field's values and dt goes into the weights."""
    stages = tableau.stages if error else tableau.advance_stages
    ode = isinstance(term, ODETerm)
    w = dt if ode else 1.0
    field, rows, c = term.field if ode else None, tableau.nonzero, tableau.c
    ks: list[torch.Tensor] = []
    for i in range(stages):
        yi = _weighted_sum(y, rows[i], ks, w) if i else y
        ti = t + c[i] * dt if c[i] else t
        ks.append(field(ti, yi) if ode else term(ti, yi, dt, dw))
    out = _weighted_sum(base, tableau.nonzero_b, ks, w * scale)
    if not error:
        return out
    return out, _weighted_sum(None, tableau.nonzero_error, ks, w)


try:  # what torch.autograd.grad calls once it has checked its arguments
    from torch.autograd.graph import _engine_run_backward
except ImportError:  # pragma: no cover - another torch version
    _engine_run_backward = None


def vjp(output: torch.Tensor, inputs: tuple[torch.Tensor, ...], cotangent: torch.Tensor):
    """The vector-Jacobian products cotangent^T d output / d input for each of `inputs` (None for an input the output
    does not reach), as torch.autograd.grad(..., allow_unused=True) computes them, but calling autograd's engine
    directly: grad's Python-side argument handling costs about 8 us a call, a tenth of one local VJP through a
    midpoint step of a small MLP field. The memory-bounded methods take one or two such VJPs per step."""
    if _engine_run_backward is None:  # pragma: no cover
        return torch.autograd.grad(output, inputs, grad_outputs=cotangent, allow_unused=True)
    return _engine_run_backward((output,), (cotangent,), False, False, inputs, True, False)


def accumulate(total: list[torch.Tensor], new: Sequence[torch.Tensor | None], subtract: bool = False) -> None:
    """total[i] += new[i] (-= with `subtract`) in place, skipping None; one fused call when nothing is None."""
    if total and not any(g is None for g in new):
        (torch._foreach_sub_ if subtract else torch._foreach_add_)(total, new)
        return
    for acc, g in zip(total, new):
        if g is not None:
            if subtract:
                acc.sub_(g)
            else:
                acc.add_(g)


# --------------------------------------------------------------------------------------------------------------
# Grids


@dataclass
class Grid:
    """The times of a solve's steps (host floats) and where each output time sits in them: output i is
    (1 - s) y_n + s y_{n+1} with n = outputs[i], s = fractions[i] (s = 0 when ts[i] is a step time)."""

    times: list[float]
    outputs: list[int]
    fractions: list[float] | None = None

    @property
    def steps(self) -> int:
        return len(self.times) - 1

    def output_weights(self) -> dict[int, list[tuple[int, float]]]:
        """grid index k -> [(position in ts, d output / d y_k)]: how output gradients enter the adjoint at y_k."""
        weights: dict[int, list[tuple[int, float]]] = {}
        for position, n in enumerate(self.outputs):
            s = self.fractions[position] if self.fractions else 0.0
            weights.setdefault(n, []).append((position, 1.0 - s))
            if s:
                weights.setdefault(n + 1, []).append((position, s))
        return weights


def output_gradient(weights: dict[int, list[tuple[int, float]]], k: int, grad_ys: torch.Tensor):
    """The sum of the output gradients that reach grid state k (None when none do)."""
    total = None
    for position, w in weights.get(k, ()):
        g = grad_ys[position] if w == 1 else grad_ys[position] * w
        total = g if total is None else total + g
    return total


class OutputCollector:
    """Gathers the outputs at `times` from the accepted states, interpolating linearly between steps."""

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.direction = 1.0 if times[-1] > times[0] else -1.0
        self.pending = 0
        self.values: list[torch.Tensor] = []
        self.outputs: list[int] = []
        self.fractions: list[float] = []
        self.previous: tuple[float, torch.Tensor] | None = None

    def accept(self, index: int, t: float, y: torch.Tensor) -> None:
        while self.pending < len(self.times) and self.direction * (self.times[self.pending] - t) <= 0:
            tau = self.times[self.pending]
            if tau == t:
                self.values.append(y)
                self.outputs.append(index)
                self.fractions.append(0.0)
            else:
                t_prev, y_prev = self.previous
                frac = (tau - t_prev) / (t - t_prev)
                self.values.append(torch.lerp(y_prev, y, frac))
                self.outputs.append(index - 1)
                self.fractions.append(frac)
            self.pending += 1
        self.previous = (t, y)

    def grid(self, times: list[float]) -> Grid:
        return Grid(times, self.outputs, self.fractions)


def check_times(ts: torch.Tensor) -> list[float]:
    """ts as host floats; must be strictly monotone (either direction) with at least two entries."""
    if ts.ndim != 1 or len(ts) < 2:
        raise ValueError("ts must be a 1-D tensor of at least two times")
    times = [float(t) for t in ts.detach().cpu().tolist()]
    diffs = [b - a for a, b in zip(times[:-1], times[1:])]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise ValueError("ts must be strictly increasing or strictly decreasing")
    return times


def fixed_grid(times: list[float], step_size: float | None) -> Grid:
    """Equal steps no longer than `step_size` between consecutive output times (one step each when None)."""
    grid, outputs = [times[0]], [0]
    for a, b in zip(times[:-1], times[1:]):
        span = abs(b - a)
        n = 1 if step_size is None else max(1, math.ceil(span / step_size - 1e-9))
        h = (b - a) / n
        grid.extend(a + k * h for k in range(1, n))
        grid.append(b)
        outputs.append(len(grid) - 1)
    return Grid(grid, outputs)


def report_step(field, accepted: bool, t=None, y=None, dt=None) -> None:
    callback = getattr(field, "callback_step" if accepted else "callback_reject_step", None)
    if callback is not None:
        callback(t, y, dt)


class StepController:
    """Adaptive step sizes from an embedded error estimate: accept when the RMS of err / (atol + rtol * max(|y0|,
    |y1|)) is at most 1; the next step is h * clip(safety * ratio^(-1/(q+1)), dfactor, ifactor), q the lower of the
    pair's two orders (the standard integral controller; torchdiffeq's and diffrax's defaults)."""

    def __init__(self, rtol: float, atol: float, order: int, max_num_steps: int | None = None,
                 safety: float = 0.9, ifactor: float = 10.0, dfactor: float = 0.2) -> None:
        self.rtol, self.atol, self.order = rtol, atol, order
        self.max_num_steps = max_num_steps or 100000
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor

    def ratio(self, err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor) -> float:
        err, y0, y1 = err.detach(), y0.detach(), y1.detach()
        scale = self.atol + self.rtol * torch.maximum(y0.abs(), y1.abs())
        return float(torch.sqrt(torch.mean((err / scale) ** 2)))

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
        d0 = float(torch.sqrt(torch.mean((y0 / scale) ** 2)))
        d1 = float(torch.sqrt(torch.mean((f0 / scale) ** 2)))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        y1 = y0 + direction * h0 * f0
        with torch.no_grad():
            f1 = term(t + direction * h0, y1, 1.0, None)
        d2 = float(torch.sqrt(torch.mean(((f1 - f0) / scale) ** 2))) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (self.order + 1))
        return min(100 * h0, h1)


def adaptive_steps(
    try_step: Callable[[float, float, object], tuple[object, torch.Tensor, torch.Tensor, torch.Tensor]],
    state: object,
    times: list[float],
    controller: StepController,
    first_step: float,
    on_accept: Callable[[int, float, object], None],
    field=None,
    land: bool = True,
) -> list[float]:
    """Drive `try_step(t, h, state) -> (new_state, err, y_old, y_new)` from times[0] to times[-1] with adaptive
    steps that land on every output time (`land`) or only on the last; `on_accept(grid_index, t, state)` sees each
    accepted state. Returns the accepted step times (the grid)."""
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
    return grid


# --------------------------------------------------------------------------------------------------------------
# A solve's schedule, and the plain (non-reversible) solve


class Schedule:
    """How a solve steps: a fixed `grid`, or a `controller` (adaptive) that finds the grid as it goes."""

    def __init__(self, times: list[float], grid: Grid | None, controller: StepController | None,
                 first_step: float | None, land: bool = True) -> None:
        self.times, self.grid, self.controller, self.first_step = times, grid, controller, first_step
        self.land = land

    @classmethod
    def build(cls, spec, tableau: Tableau, ts: torch.Tensor) -> Schedule:
        """From a `solvers.base.SolverSpec` (name, step_size or rtol/atol, max_num_steps, options.first_step)."""
        times = check_times(ts)
        if not spec.adaptive:
            return cls(times, fixed_grid(times, spec.step_size), None, None)
        controller = StepController(spec.rtol, spec.atol, min(tableau.order, tableau.embedded_order),
                                    spec.max_num_steps)
        outputs = spec.options.get("outputs", "land")
        if outputs not in ("land", "interpolate"):
            raise ValueError(f"solver.options.outputs={outputs!r} is not a choice; choose land or interpolate")
        return cls(times, None, controller, spec.options.get("first_step"), land=outputs == "land")

    def drive(self, term: Term, y0: torch.Tensor, state: object, try_step, on_accept, field) -> list[float]:
        """Run the adaptive steps (see `adaptive_steps`)."""
        return adaptive_steps(try_step, state, self.times, self.controller, self.first(term, y0), on_accept, field,
                              self.land)

    @property
    def direction(self) -> float:
        return 1.0 if self.times[-1] > self.times[0] else -1.0

    def first(self, term: Term, y0: torch.Tensor) -> float:
        if self.first_step is not None:
            return float(self.first_step)
        return self.controller.initial_step(term, self.times[0], y0, self.direction)


def brownian_increment(bm, t0: float, t1: float) -> torch.Tensor | None:
    """W(t1) - W(t0) from a torchsde Brownian object (None for ODEs), either direction."""
    if bm is None:
        return None
    return bm(t0, t1) if t1 > t0 else -bm(t1, t0)


class PlainStepper:
    """y_{n+1} = y_n + Psi_h(t_n, y_n): the base scheme itself (direct_rk, checkpointing)."""

    def __init__(self, term: Term, tableau: Tableau, bm=None, field=None) -> None:
        self.term, self.tableau, self.bm, self.field = term, tableau, bm, field

    def step(self, t0: float, t1: float, y: torch.Tensor, error: bool = False):
        t = torch.full((), t0, dtype=y.dtype, device=y.device)
        return rk_increment(self.term, self.tableau, t, t1 - t0, y, brownian_increment(self.bm, t0, t1), error, base=y)

    def grad_step(self, t0: float, t1: float, y: torch.Tensor, adj: torch.Tensor, params: tuple[torch.Tensor, ...],
                  grads: list[torch.Tensor]) -> torch.Tensor | None:
        """The adjoint of y_n from adj, that of y_{n+1}: re-take the step from y_n with a graph and pull adj back
        through it (one local VJP), adding the parameter gradient into `grads` in place (checkpointing's backward
        step; the bench times it as one cost unit)."""
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            y1 = self.step(t0, t1, y_)
        g = vjp(y1, (y_, *params), adj)
        accumulate(grads, g[1:])
        return g[0]

    def advance(self, times: list[float], start: int, stop: int, y: torch.Tensor) -> torch.Tensor:
        for n in range(start, stop):
            y = self.step(times[n], times[n + 1], y)
            report_step(self.field, True)
        return y

    def run(self, schedule: Schedule, y0: torch.Tensor, keep: Callable[[int, torch.Tensor], None] | None = None):
        """Solve under the current grad mode: (outputs at ts, grid); `keep(index, y)` sees every grid state."""
        collector = OutputCollector(schedule.times)

        def on_accept(index, t, y):
            if keep is not None:
                keep(index, y)
            collector.accept(index, t, y)

        if schedule.grid is not None:
            times, y = schedule.grid.times, y0
            on_accept(0, times[0], y)
            for n in range(len(times) - 1):
                y = self.step(times[n], times[n + 1], y)
                report_step(self.field, True)
                on_accept(n + 1, times[n + 1], y)
            return collector.values, collector.grid(times)

        def try_step(t, h, y):
            y1, err = self.step(t, t + h, y, error=True)
            return y1, err, y, y1

        accepted = schedule.drive(self.term, y0, y0, try_step, on_accept, self.field)
        return collector.values, collector.grid(accepted)
