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

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from solvers.base import GradientMethod, SolverSpec
from solvers.reversible import trainable
from solvers.rk import Grid, check_times, fixed_grid, output_gradient, report_step


class _ALF:
    def __init__(self, field, eta: float) -> None:
        self.field, self.eta = field, eta

    def f(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.field(torch.full((), t, dtype=y.dtype, device=y.device), y)

    def step(self, t0: float, t1: float, z: torch.Tensor, v: torch.Tensor):
        h = t1 - t0
        k = z + v * (h / 2)
        u = self.f(t0 + h / 2, k)
        v1 = v + 2 * self.eta * (u - v)
        return k + v1 * (h / 2), v1

    def inverse(self, t0: float, t1: float, z1: torch.Tensor, v1: torch.Tensor):
        h = t1 - t0
        k = z1 - v1 * (h / 2)
        u = self.f(t0 + h / 2, k)
        v = (v1 - 2 * self.eta * u) / (1 - 2 * self.eta)
        return k - v * (h / 2), v


class _MALISolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alf: _ALF, grid: Grid, y0: torch.Tensor, *params: torch.Tensor):
        z, v = y0, alf.f(grid.times[0], y0)
        wanted, outputs = set(grid.outputs), [y0] if 0 in grid.outputs else []
        for n in range(grid.steps):
            z, v = alf.step(grid.times[n], grid.times[n + 1], z, v)
            report_step(alf.field, True)
            if n + 1 in wanted:
                outputs.append(z)
        ctx.alf, ctx.grid = alf, grid
        ctx.save_for_backward(y0, z, v, *params)
        return torch.stack(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys):
        alf, grid = ctx.alf, ctx.grid
        y0, z, v, *params = ctx.saved_tensors
        weights, times = grid.output_weights(), grid.times
        grads = [torch.zeros_like(p) for p in params]
        a_z, a_v = torch.zeros_like(z), torch.zeros_like(v)

        def vjp(outputs, inputs, grad_outputs):
            g = torch.autograd.grad(outputs, inputs, grad_outputs, allow_unused=True)
            for i, gi in enumerate(g[len(g) - len(params):]):
                if gi is not None:
                    grads[i] += gi
            return g

        for n in range(grid.steps - 1, -1, -1):
            g = output_gradient(weights, n + 1, grad_ys)
            if g is not None:
                a_z = a_z + g
            with torch.no_grad():
                z, v = alf.inverse(times[n], times[n + 1], z, v)
            with torch.enable_grad():
                z_, v_ = z.detach().requires_grad_(True), v.detach().requires_grad_(True)
                z1, v1 = alf.step(times[n], times[n + 1], z_, v_)
                a_z, a_v = vjp((z1, v1), (z_, v_, *params), (a_z, a_v))[:2]
            report_step(alf.field, True)
        g = output_gradient(weights, 0, grad_ys)
        if g is not None:
            a_z = a_z + g
        with torch.enable_grad():
            z_ = y0.detach().requires_grad_(True)
            g = vjp(alf.f(times[0], z_), (z_, *params), a_v)
        grad_y0 = a_z if g[0] is None else a_z + g[0]
        return (None, None, grad_y0, *grads)


class MALI(GradientMethod):
    name = "mali"

    def __init__(self, solver: SolverSpec, norm: str = "default", eta: float = 1.0) -> None:
        super().__init__(solver, norm)
        if not (isinstance(eta, (int, float)) and 0 < eta <= 1 and eta != 0.5):
            raise ValueError(f"method.eta must be in (0, 1] and not 0.5 (not invertible there), got {eta!r}")
        self.eta = float(eta)

    def check_solver(self, solver: SolverSpec) -> None:
        if solver.adaptive or solver.step_size is None:
            raise ValueError(f"method={self.name} takes fixed steps; set solver.step_size (solver={solver.name} "
                             "gives only the step size, the scheme is always the asynchronous leapfrog)")

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        grid = fixed_grid(check_times(ts), self.solver.step_size)
        return _MALISolve.apply(_ALF(field, self.eta), grid, y0, *trainable(field))
