"""The continuous adjoint on the harness's own stepping core (`method=adjoint_core`), beside torchdiffeq's.

The same mathematics as torchdiffeq's `odeint_adjoint` (`method=adjoint`, the papers' baseline, kept as it is): the
forward solve is torchdiffeq's (so it takes the very steps `adjoint`, `direct` and `gq` take), and the backward pass
solves the augmented system

    d/dt [a_t, y, a_y, a_theta] = [-a_y^T df/dt, f(t, y), -a_y^T df/dy, -a_y^T df/dtheta]

backwards over each interval between output times, restarting at every observation time as torchdiffeq does (y
reset to the forward solution there, the output's gradient added to a_y). The backward solve is the stepping core's:
the tableau `solver=` names, stepped by `solvers.core.integrate` under a `StepController` whose error norm is
`norm=` applied to the tuple (a_t, y, a_y, *a_theta) (solvers/norms.py: the norms mean here what they mean for
torchdiffeq), with first-same-as-last stages reused (dopri5: 6 evaluations per step, as torchdiffeq). What differs
from torchdiffeq's backward solve: steps land on the interval's end instead of stepping past it and interpolating,
and an accepted step may shrink the next one (torchdiffeq's never does); both are within the tolerance.

Why it exists: the harness controls this backward solve, so it can start warm (`warm_start`, `solvers.core.WarmStart`,
the same rule GQ's backward solve uses): each interval's solve begins with the step the previous one ended with (the
forward solve's last step, first) instead of the initial-step selection. With it the bench can show the adjoint with
and without the warm start next to GQ with and without it, so GQ's own effect (a backward solve of [y, a] only plus
quadrature) is measured apart from the warm start, which any backward solve can use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from solvers.base import ForwardSolve, OwnBackwardMethod, SolverSpec, backward_tolerances
from solvers.core import ODETerm, PlainStepper, Schedule, StepController, WarmStart, integrate, vjp
from solvers.norms import get_norm
from solvers.tableaus import get_tableau, has_tableau


class _AugmentedSystem:
    """The adjoint's augmented state [a_t, y, a_y, *a_theta] as one flat tensor (as torchdiffeq flattens its tuple
    state), and its dynamics. `time_grad`: compute a_t's derivative (-a_y^T df/dt), else it stays 0."""

    def __init__(self, field: Any, shape: torch.Size, params: Sequence[torch.Tensor], time_grad: bool) -> None:
        self.field, self.params, self.time_grad = field, tuple(params), time_grad
        self.shapes = [torch.Size(()), shape, shape, *(p.shape for p in params)]
        self.sizes = [math.prod(s) for s in self.shapes]

    def split(self, state: torch.Tensor) -> list[torch.Tensor]:
        return [part.view(shape) for part, shape in zip(torch.split(state, self.sizes), self.shapes)]

    def join(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([part.reshape(-1) for part in parts])

    def __call__(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        _, y, a, *_ = self.split(state)
        with torch.enable_grad():
            t = t.detach().requires_grad_(self.time_grad)
            y = y.detach().requires_grad_(True)
            f = self.field(t, y)
            grads = vjp(f, ((t,) if self.time_grad else ()) + (y, *self.params), -a)
        g_t, g_y, *g_theta = grads if self.time_grad else (None, *grads)
        return self.join([torch.zeros_like(t) if g_t is None else g_t, f.detach(),
                          torch.zeros_like(y) if g_y is None else g_y,
                          *(torch.zeros_like(p) if g is None else g for p, g in zip(self.params, g_theta))])


class _Stepper(PlainStepper):
    """One tableau step of the augmented system (the base scheme's `PlainStepper`), reusing field values where
    the state is the same: a first-same-as-last tableau's last stage (evaluated at y_{n+1}) is the next step's first,
    a rejected step's retry reuses its first stage, and the first step reuses the evaluation at the start that the
    initial-step selection made, as torchdiffeq does. A value is reused only for the very state it was computed at
    (same storage, unmodified), which is always at the time that state stands for."""

    def __init__(self, system: _AugmentedSystem, tableau: Any, field: Any) -> None:
        super().__init__(ODETerm(self._evaluate), tableau, field=field)
        self.system = system
        self._known: list[list[Any]] = []  # [state, f(t, state) or None]: states whose value is kept
        self._last: torch.Tensor | None = None

    def begin(self, state: torch.Tensor) -> None:
        """A new solve starts from `state`: forget every kept value, keep the next one computed at `state`."""
        self._known = [[state, None]]

    @staticmethod
    def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.data_ptr() == b.data_ptr() and a._version == b._version and a.shape == b.shape

    def _evaluate(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for entry in self._known:
            if self._same(entry[0], y):
                if entry[1] is None:
                    entry[1] = self.system(t, y)
                return entry[1]
        self._last = self.system(t, y)
        return self._last

    def step_with_error(self, t0: float, t1: float, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = next((entry for entry in self._known if self._same(entry[0], state)), None) or [state, None]
        self._known = [start]
        out, err = self._increment(t0, t1, state, True)
        if self.tableau.fsal:
            self._known.append([out, self._last])
        return out, err


class CoreAdjoint(OwnBackwardMethod):
    """The continuous adjoint, its backward solve on the stepping core (module docstring).

    Settings (conf/method/adjoint_core.yaml):
      adjoint_rtol/atol  the backward solve's tolerances (null: the forward solve's)
      warm_start         each backward solve starts with the step the previous one ended with (the forward's, first)
    `solver=` must be a torchdiffeq solver (the forward solve) with a tableau in solvers/tableaus.py (the backward
    solve): dopri5, bosh3, adaptive_heun, or a fixed-step one (euler, midpoint, rk4: the backward steps the classic
    RK4, torchdiffeq's forward the 3/8 rule).
    """

    name = "adjoint_core"

    def __init__(self, solver: SolverSpec, norm: str = "default", adjoint_rtol: float | None = None,
                 adjoint_atol: float | None = None, warm_start: bool = True) -> None:
        super().__init__(solver, norm, warm_start)
        self.adjoint_rtol, self.adjoint_atol = backward_tolerances(solver, adjoint_rtol, adjoint_atol)
        self.tableau = get_tableau(solver.name)

    def check_solver(self, solver: SolverSpec) -> None:
        super().check_solver(solver)
        if not has_tableau(solver.name):
            raise ValueError(f"solver={solver.name} has no Butcher tableau in solvers/tableaus.py, and "
                             f"method={self.name} steps its backward solve with one; use e.g. solver=dopri5")

    def _schedule(self, t1: float, t0: float, system: _AugmentedSystem, warm_start: WarmStart) -> Schedule:
        """The backward solve of one interval, from t1 back to t0."""
        times = torch.tensor([t1, t0], dtype=torch.float64)
        if not self.solver.adaptive:
            return Schedule.fixed(times, self.solver.step_size)
        norm = get_norm(self.norm)
        controller = StepController(self.adjoint_rtol, self.adjoint_atol,
                                    min(self.tableau.order, self.tableau.embedded_order), self.solver.max_num_steps,
                                    norm=lambda scaled: norm(system.split(scaled)))
        return Schedule([t1, t0], None, controller, None, warm_start=warm_start)

    def backward_pass(self, field: Any, ts: torch.Tensor, ys: torch.Tensor, grad_ys: torch.Tensor,
                      params: Sequence[torch.Tensor], time_grad: bool, forward: ForwardSolve):
        """(dL/dy0, dL/dts or None, dL/dtheta): the augmented system solved back over every interval, starting warm
        from the forward solve's last step when `warm_start` is on."""
        system = _AugmentedSystem(field, ys.shape[1:], params, time_grad)
        stepper = _Stepper(system, self.tableau, field)
        warm_start = forward.warm_start
        times = [float(t) for t in ts.detach().cpu().tolist()]
        a_t = ys.new_zeros(())
        a_y = grad_ys[-1]
        a_theta = [torch.zeros_like(p) for p in params]
        grad_ts = torch.empty_like(ts) if time_grad else None
        for i in range(len(ts) - 1, 0, -1):
            if time_grad:  # moving the output time t_i moves the loss by grad_ys[i] . f(t_i, y_i)
                moved = (field(ts[i], ys[i]) * grad_ys[i]).sum()
                a_t = a_t - moved
                grad_ts[i] = moved
            state = system.join([a_t, ys[i], a_y, *a_theta])
            stepper.begin(state)
            _, state, _ = integrate(stepper, self._schedule(times[i], times[i - 1], system, warm_start), state)
            a_t, _, a_y, *a_theta = system.split(state)
            a_y = a_y + grad_ys[i - 1]
        if time_grad:
            grad_ts[0] = a_t
        return a_y, grad_ts, a_theta

    def describe(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"warm_start": self.warm_start}
        if self.solver.adaptive:
            extra.update(adjoint_rtol=self.adjoint_rtol, adjoint_atol=self.adjoint_atol)
        return extra
