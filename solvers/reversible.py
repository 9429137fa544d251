"""Algebraically reversible Runge–Kutta solvers (McCallum & Foster 2024, arXiv 2410.11648) with exact gradients
in memory that does not grow with the number of steps.

Any explicit RK method of `solvers/tableaus.py` (increment Psi_h(t, y), so y_{n+1} = y_n + Psi_h(t_n, y_n)) is
made reversible by carrying a pair (y_n, z_n), started equal (y_0 = z_0), with a coupling parameter lambda:

    y_{n+1} = lambda * y_n + (1 - lambda) * z_n + Psi_h(t_n, z_n)        one base step forward from z
    z_{n+1} = z_n - Psi_{-h}(t_{n+1}, y_{n+1})                           one base step backward from y

and returning y. Each step inverts exactly:

    z_n = z_{n+1} + Psi_{-h}(t_{n+1}, y_{n+1})
    y_n = (1/lambda) y_{n+1} + (1 - 1/lambda) z_n - (1/lambda) Psi_h(t_n, z_n)

so the backward pass keeps only the last pair, walks back one step at a time reconstructing each earlier pair, and
takes the two local vector-Jacobian products there (the authors' recursion, repo sammccallum/reversible, file
reversible/reversible_solver.py): a_y <- a_y - J_{Psi_-h}(y_{n+1})^T a_z, then a_z <- a_z + (1 - lambda) a_y +
J_{Psi_h}(z_n)^T a_y and a_y <- lambda a_y; the gradient of y_0 = z_0 is a_y + a_z. The gradient is that of the
discrete forward solve (discretise-then-optimise) up to floating-point round-off; the reconstruction divides by
lambda, so round-off can grow like lambda^-n over very long solves (see docs in the tests).

Steps: fixed (`solver.step_size`; each interval between output times cut into equal steps) or adaptive for a tableau
with embedded weights, the error estimate taken, as the authors' diffrax implementation does, from the backward
base step from y_{n+1}; the accepted step times are kept (one float per step) so the backward pass retraces them.
Outputs at every time of `ts` are grid points, so no interpolation enters (with adaptive steps and
`solver.options.outputs: interpolate`, outputs between steps are linear interpolations of the accepted y's instead,
and their gradients enter the adjoint at both neighbouring steps). Dopri5 and Tsit5 advance with their
5th-order weights (diffrax's choice; the authors' v1 code advanced Dopri5 with its 4th-order weights).

Extensions (same step): neural CDEs through `solve` (the task's field multiplies by dX/dt), and Stratonovich SDEs
through `solve_sde`, each stage an increment f dt + g dW with dW from the torchsde Brownian object, re-queried in the
backward pass (so no noise is stored) and negated for the backward base step.

NFE: each step costs two base steps forward (stages of Psi_h from z plus stages of Psi_-h from y; all stages of the
latter when it estimates the error). The backward pass costs two base steps (reconstruction, whose graphs also
give the VJPs) per step, counted as backward NFE; the first backward step skips the VJP through Psi_-h, which
multiplies a zero adjoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from solvers.base import SolverSpec, SteppingMethod, trainable
from solvers.core import (
    ODETerm,
    OutputGradients,
    Schedule,
    Term,
    accumulate,
    brownian_increment,
    integrate,
    rk_increment,
    vjp,
)
from solvers.core.compiled import Compiler, FunctionalField, count_steps, times_tensor, traceable
from solvers.core.stepping import step_through
from solvers.nfe import report_step
from solvers.tableaus import Tableau

BACKWARDS = ("reconstruct", "autograd")
Pair = tuple[torch.Tensor, torch.Tensor]


class ReversibleStepper:
    """The reversible pair's forward and backward steps for one solve (term, tableau, lambda, Brownian object); its
    state is the pair (y, z), its solution y. Public per-step pieces: `step` / `step_with_error` (forward) and
    `inverse_step` (one step of the backward pass), which runs.bench's cost model also times.

    Written for a small per-step cost, since on small fields the operations around the field evaluations cost about as
    much as the evaluations themselves: each base step adds its stages straight into the quantity the step needs
    (y_{n+1}, z_{n+1}, z_n) with `rk_increment(base=..., scale=...)`; the time t_{n+1} shared by two consecutive
    steps is one tensor; the local VJPs call autograd's engine directly (`solvers.core.vjp`); parameter gradients
    accumulate with one fused call per VJP."""

    def __init__(self, term: Term, tableau: Tableau, coupling: float, bm: Any = None, field: Any = None,
                 compiler: Compiler | None = None) -> None:
        self.term, self.tableau, self.lam, self.bm = term, tableau, coupling, bm
        self.field = field  # receives step callbacks (the NFE counter's wrapper)
        self._last_time: tuple[float, torch.dtype, torch.Tensor] | None = None
        self.compiled = None if compiler is None else CompiledReversibleSteps(compiler, field, tableau, coupling)

    def steps(self, times: list[float], start: int, stop: int, state: Pair) -> Pair:
        """The pair at times[stop] from the pair at times[start] (one compiled loop when compiled)."""
        return step_through(self, times, start, stop, state)

    def _time(self, t: float, like: torch.Tensor) -> torch.Tensor:
        """t as a 0-d tensor like the state; the previous one is reused, since consecutive steps (forward and
        backward) share their common time (a fill, not a host-to-device copy)."""
        last = self._last_time
        if last is not None and last[0] == t and last[1] == like.dtype and last[2].device == like.device:
            return last[2]
        tensor = torch.full((), t, dtype=like.dtype, device=like.device)
        self._last_time = (t, like.dtype, tensor)
        return tensor

    def _dw(self, t0: float, t1: float) -> torch.Tensor | None:
        return brownian_increment(self.bm, t0, t1)

    def _pair_step(self, t0: float, t1: float, y: torch.Tensor, z: torch.Tensor, error: bool):
        """(y_{n+1}, z_{n+1}) from (y_n, z_n); with `error`, also the backward base step's error estimate."""
        h, dw, lam = t1 - t0, self._dw(t0, t1), self.lam
        # y_{n+1} = lam y_n + (1 - lam) z_n + Psi_h(t_n, z_n)
        base = y if lam == 1 else torch.add(y * lam, z, alpha=1 - lam)
        y1 = rk_increment(self.term, self.tableau, self._time(t0, z), h, z, dw, base=base)
        # z_{n+1} = z_n - Psi_-h(t_{n+1}, y_{n+1})
        back = rk_increment(self.term, self.tableau, self._time(t1, y1), -h, y1, None if dw is None else -dw,
                            error=error, base=z, scale=-1.0)
        z1, err = back if error else (back, None)
        return y1, z1, err

    def step(self, t0: float, t1: float, state: Pair) -> Pair:
        """(y_{n+1}, z_{n+1}) from state = (y_n, z_n)."""
        y1, z1, _ = self._pair_step(t0, t1, *state, error=False)
        return y1, z1

    def step_with_error(self, t0: float, t1: float, state: Pair) -> tuple[Pair, torch.Tensor]:
        """((y_{n+1}, z_{n+1}), the backward base step's error estimate), as the authors' diffrax code estimates it."""
        y1, z1, err = self._pair_step(t0, t1, *state, error=True)
        return (y1, z1), err

    def solution(self, state: Pair) -> torch.Tensor:
        return state[0]

    def inverse_step(self, t0: float, t1: float, y1: torch.Tensor, z1: torch.Tensor, a_y: torch.Tensor,
                     a_z: torch.Tensor | None, params: tuple[torch.Tensor, ...], grads: list[torch.Tensor]):
        """Reconstruct (y_n, z_n) from (y_{n+1}, z_{n+1}) and carry the adjoints (a_y, a_z) of the later pair back to
        the earlier one, adding the parameter gradient into `grads` (one tensor per parameter, updated in place).
        a_z None means a zero adjoint."""
        h, dw, lam = t1 - t0, self._dw(t0, t1), self.lam
        with torch.set_grad_enabled(a_z is not None):  # a zero a_z needs no VJP through Psi_-h
            y1_ = y1.detach().requires_grad_(a_z is not None)
            # z_n = z_{n+1} + Psi_-h(t_{n+1}, y_{n+1}); its graph from y_{n+1} is that of Psi_-h (z_{n+1} is constant)
            z0_graph = rk_increment(self.term, self.tableau, self._time(t1, y1), -h, y1_,
                                    None if dw is None else -dw, base=z1)
        if a_z is not None:
            # z_{n+1} = z_n - Psi_-h(y_{n+1}): a_y -= J^T a_z, theta likewise (no negated copy of a_z needed)
            g = vjp(z0_graph, (y1_, *params), a_z)
            if g[0] is not None:
                a_y = a_y - g[0]
            accumulate(grads, g[1:], subtract=True)
        z0 = z0_graph.detach()
        with torch.enable_grad():
            z0_ = z0.detach().requires_grad_(True)
            p = rk_increment(self.term, self.tableau, self._time(t0, z0), h, z0_, dw)
        # y_n = (1/lam) y_{n+1} + (1 - 1/lam) z_n - (1/lam) Psi_h(t_n, z_n), as the authors invert it (no graph here)
        y0 = torch.sub(y1, p) if lam == 1 else torch.add(torch.add(y1 * (1 / lam), z0, alpha=1 - 1 / lam), p,
                                                         alpha=-1 / lam)
        # y_{n+1} = lam y_n + (1 - lam) z_n + Psi_h(z_n)
        g = vjp(p, (z0_, *params), a_y)
        accumulate(grads, g[1:])
        a_z_new = a_y * (1 - lam) if a_z is None else torch.add(a_z, a_y, alpha=1 - lam)
        if g[0] is not None:
            a_z_new = a_z_new.add_(g[0])
        return y0, z0, a_y * lam if lam != 1 else a_y, a_z_new


class CompiledReversibleSteps:
    """The reversible pair's steps as compiled loops (`method.compile=true`, solvers/core/compiled.py): forward
    steps, and backward steps that reconstruct and pull back with torch.func.vjp inside the compiled graph, the
    same arithmetic as `ReversibleStepper.step` / `inverse_step` (a zero a_z enters as zeros)."""

    def __init__(self, compiler: Compiler, field: Any, tableau: Tableau, coupling: float) -> None:
        self.compiler, self.field, self.tableau, self.lam = compiler, field, traceable(tableau), coupling
        self.functional = FunctionalField(field)
        self.key = (id(self.functional.module), tableau.name, coupling)
        self._times: dict[str, tuple[list[float], torch.Tensor]] = {}

    def _psi(self, params, t: torch.Tensor, h: torch.Tensor, y: torch.Tensor, base=None, scale: float = 1.0):
        term = ODETerm(lambda s, x: self.functional.call(params, s, x))
        return rk_increment(term, self.tableau, t, h, y, None, base=base, scale=scale)

    def _forward(self, params, t0, t1, y, z):
        h, lam = t1 - t0, self.lam
        y1 = self._psi(params, t0, h, z, base=y if lam == 1 else y * lam + z * (1 - lam))
        return y1, self._psi(params, t1, -h, y1, base=z, scale=-1.0)

    def _inverse(self, params, t1, t0, y1, z1, a_y, a_z, *grads):
        h, lam = t1 - t0, self.lam
        z0, pull = torch.func.vjp(lambda x, *p: self._psi(p, t1, -h, x, base=z1), y1, *params)
        g = pull(a_z)
        a_y = a_y - g[0]
        grads = [acc - d for acc, d in zip(grads, g[1:])]
        p, pull = torch.func.vjp(lambda x, *q: self._psi(q, t0, h, x), z0, *params)
        y0 = y1 - p if lam == 1 else y1 * (1 / lam) + z0 * (1 - 1 / lam) - p * (1 / lam)
        g = pull(a_y)
        grads = [acc + d for acc, d in zip(grads, g[1:])]
        a_z = a_z + a_y * (1 - lam) + g[0]
        return (y0, z0, a_y * lam if lam != 1 else a_y, a_z, *grads)

    def _grid(self, times: list[float], like: torch.Tensor, reverse: bool) -> torch.Tensor:
        name = "reverse" if reverse else "forward"
        if name not in self._times or self._times[name][0] is not times:
            self._times[name] = (times, times_tensor(times[::-1] if reverse else times, like))
        return self._times[name][1]

    def steps(self, times: list[float], start: int, stop: int, state: Pair) -> Pair:
        y, z = self.compiler.loop(("reversible", *self.key), self._forward, self.functional.params(),
                                  self._grid(times, state[0], False), start, stop, state)
        count_steps(self.field, stop - start, 2 * self.tableau.advance_stages)
        return y, z

    def inverse_steps(self, times: list[float], lo: int, hi: int, y, z, a_y, a_z, params, grads: list[torch.Tensor]):
        """The backward steps hi -> lo (one compiled loop over the reversed grid), adding into `grads` in place."""
        n = len(times) - 1
        out = self.compiler.loop(("reversible inverse", *self.key), self._inverse, tuple(params),
                                 self._grid(times, y, True), n - hi, n - lo, (y, z, a_y, a_z, *grads))
        for acc, new in zip(grads, out[4:]):
            acc.copy_(new)
        count_steps(self.field, hi - lo, 2 * self.tableau.advance_stages)
        return out[:4]


class _ReversibleSolve(torch.autograd.Function):
    """Forward: the reversible solve without a graph. Backward: reconstruct pair by pair, one local VJP per base
    step; only the final pair is saved, whatever the number of steps."""

    @staticmethod
    def forward(ctx, stepper: ReversibleStepper, schedule: Schedule, y0: torch.Tensor, *params: torch.Tensor):
        outputs, (y, z), grid = integrate(stepper, schedule, (y0, y0))
        ctx.stepper, ctx.grid = stepper, grid
        ctx.save_for_backward(y, z, *params)
        return torch.stack(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        stepper, grid = ctx.stepper, ctx.grid
        y, z, *params = ctx.saved_tensors
        params = tuple(params)
        outputs = OutputGradients(grid, grad_ys)
        grads = [torch.zeros_like(p) for p in params]
        a_y = torch.zeros_like(y)
        a_z = None
        if stepper.compiled is not None:  # compiled loops between the grid states output gradients enter at
            a_z = torch.zeros_like(z)
            marks = sorted({*grid.outputs, grid.steps} - {0}, reverse=True)
            for hi, lo in zip(marks, [*marks[1:], 0]):
                a_y = outputs.add_to(a_y, hi)
                y, z, a_y, a_z = stepper.compiled.inverse_steps(grid.times, lo, hi, y, z, a_y, a_z, params, grads)
        else:
            for n in range(grid.steps - 1, -1, -1):
                a_y = outputs.add_to(a_y, n + 1)
                y, z, a_y, a_z = stepper.inverse_step(grid.times[n], grid.times[n + 1], y, z, a_y, a_z, params,
                                                      grads)
                report_step(stepper.field, True)
        a_y = outputs.add_to(a_y, 0)
        grad_y0 = a_y + a_z if a_z is not None else a_y
        return (None, None, grad_y0, *grads)


class Reversible(SteppingMethod):
    """McCallum–Foster reversible solver over the tableau `solver=` names; `coupling` is lambda in (0, 1]."""

    name = "reversible"

    def __init__(self, solver: SolverSpec, norm: str = "default", coupling: float = 0.999,
                 backward: str = "reconstruct", compile: bool = False) -> None:
        super().__init__(solver, norm, compile=compile)
        if not (isinstance(coupling, (int, float)) and 0 < coupling <= 1):
            raise ValueError(f"method.coupling must be a number in (0, 1], got {coupling!r}")
        if backward not in BACKWARDS:
            raise ValueError(f"method.backward={backward!r} is not a choice; choose one of {', '.join(BACKWARDS)}")
        self.coupling = float(coupling)
        self.backward = backward

    def _stepper(self, term: Term, field: Any, bm: Any = None) -> ReversibleStepper:
        return ReversibleStepper(term, self.tableau, self.coupling, bm=bm, field=field,
                                 compiler=self.compiler_for(bm))

    def _run(self, stepper: ReversibleStepper, schedule: Schedule, y0: torch.Tensor) -> torch.Tensor:
        if self.backward == "autograd":  # plain backprop through the same discrete solve (memory grows with steps)
            return torch.stack(integrate(stepper, schedule, (y0, y0))[0])
        return _ReversibleSolve.apply(stepper, schedule, y0, *trainable(stepper.field))

    def describe(self) -> dict[str, Any]:
        return {"coupling": self.coupling, **super().describe()}
