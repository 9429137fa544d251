"""MALI (Zhuang, Dvornek, Tatikonda & Duncan 2021): the asynchronous leapfrog integrator, reversible, so its
backward pass reconstructs each state instead of storing it (memory does not grow with the number of steps).

State (z, v) with v_0 = f(t_0, z_0); one step of size h from t:
    k = z + v h/2,  u = f(t + h/2, k),  v' = v + 2 eta (u - v),  z' = k + v' h/2
and exactly backwards: k = z' - v' h/2, u = f(t + h/2, k), v = (v' - 2 eta u) / (1 - 2 eta), z = k - v h/2.
(eta = 1: undamped ALF, MALI's default; eta = 1/2 is not invertible.) Fixed steps on the harness's grid (adaptive
ALF, which MALI also offers, is left out). Backward: per step one evaluation to reconstruct and one, with a graph,
for the local VJP; then a VJP through v_0 = f(t_0, z_0). Second order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from solvers.base import GradientMethod, SolverSpec, trainable
from solvers.core import OutputGradients, Schedule, accumulate, integrate, vjp
from solvers.nfe import report_step

State = tuple[torch.Tensor, torch.Tensor]


class LeapfrogStepper:
    """The damped asynchronous leapfrog step on the state (z, v), forwards (`step`) and exactly backwards
    (`inverse`); its solution is z. Fixed steps only, so it has no error estimate (`step_with_error`)."""

    def __init__(self, field: Any, eta: float) -> None:
        self.field, self.eta = field, eta

    def f(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.field(torch.full((), t, dtype=y.dtype, device=y.device), y)

    def initial_state(self, t0: float, y0: torch.Tensor) -> State:
        """(z_0, v_0) = (y_0, f(t_0, y_0))."""
        return y0, self.f(t0, y0)

    def step(self, t0: float, t1: float, state: State) -> State:
        z, v = state
        h = t1 - t0
        k = z + v * (h / 2)
        u = self.f(t0 + h / 2, k)
        v1 = v + 2 * self.eta * (u - v)
        return k + v1 * (h / 2), v1

    def solution(self, state: State) -> torch.Tensor:
        return state[0]

    def inverse(self, t0: float, t1: float, state: State) -> State:
        z1, v1 = state
        h = t1 - t0
        k = z1 - v1 * (h / 2)
        u = self.f(t0 + h / 2, k)
        v = (v1 - 2 * self.eta * u) / (1 - 2 * self.eta)
        return k - v * (h / 2), v


class _MALISolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alf: LeapfrogStepper, schedule: Schedule, y0: torch.Tensor, *params: torch.Tensor):
        outputs, (z, v), grid = integrate(alf, schedule, alf.initial_state(schedule.times[0], y0))
        ctx.alf, ctx.grid = alf, grid
        ctx.save_for_backward(y0, z, v, *params)
        return torch.stack(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys):
        alf, grid = ctx.alf, ctx.grid
        y0, z, v, *params = ctx.saved_tensors
        outputs, times = OutputGradients(grid, grad_ys), grid.times
        grads = [torch.zeros_like(p) for p in params]
        a_z, a_v = torch.zeros_like(z), torch.zeros_like(v)
        for n in range(grid.steps - 1, -1, -1):
            a_z = outputs.add_to(a_z, n + 1)
            with torch.no_grad():
                z, v = alf.inverse(times[n], times[n + 1], (z, v))
            with torch.enable_grad():
                z_, v_ = z.detach().requires_grad_(True), v.detach().requires_grad_(True)
                z1, v1 = alf.step(times[n], times[n + 1], (z_, v_))
                g = vjp((z1, v1), (z_, v_, *params), (a_z, a_v))
            accumulate(grads, g[2:])
            a_z, a_v = g[:2]
            report_step(alf.field, True)
        a_z = outputs.add_to(a_z, 0)
        with torch.enable_grad():  # v_0 = f(t_0, z_0)
            z_ = y0.detach().requires_grad_(True)
            g = vjp(alf.f(times[0], z_), (z_, *params), a_v)
        accumulate(grads, g[1:])
        grad_y0 = a_z if g[0] is None else a_z + g[0]
        return (None, None, grad_y0, *grads)


class MALI(GradientMethod):
    name = "mali"
    own_scheme = "the asynchronous leapfrog"

    def __init__(self, solver: SolverSpec, norm: str = "default", eta: float = 1.0) -> None:
        super().__init__(solver, norm)
        if not (isinstance(eta, (int, float)) and 0 < eta <= 1 and eta != 0.5):
            raise ValueError(f"method.eta must be in (0, 1] and not 0.5 (not invertible there), got {eta!r}")
        self.eta = float(eta)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        schedule = Schedule.fixed(ts, self.solver.step_size)
        return _MALISolve.apply(LeapfrogStepper(field, self.eta), schedule, y0, *trainable(field))
