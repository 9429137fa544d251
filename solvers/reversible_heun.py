"""Reversible Heun (Kidger, Foster, Li & Lyons 2021) with its exact adjoint, through torchsde.

`torchsde.sdeint_adjoint(method="reversible_heun", adjoint_method="adjoint_reversible_heun")`: an algebraically
reversible Stratonovich SDE solver whose backward pass reconstructs the forward states, so memory does not grow with
the number of steps. The paper of the reversible solvers compares against it (it is their scheme's ancestor, with
no coupling parameter: its linear stability region is a piece of the imaginary axis only). For ODEs we run the same
solver with zero diffusion, so the ODE baseline is the very same scheme. Fixed steps only (`solver.step_size`); the
solver's name is not used (the scheme is always reversible Heun), so any `solver=` with a step size will do.

Exact grids: torchsde accumulates its time (t += dt), so 10 steps of 0.1 end at 0.9999999999999999 and take an
11th step of 1e-16, which its adjoint then retraces on a differently aligned grid (the gradient was off by 1.3e-4
relative). ODE solves on a uniform grid therefore run in the step counter s = (t - t0) / h: torchsde steps s by 1
(integers add exactly), the field is h f(t_k, y) with t_k the grid's time by index, so the arithmetic is that of
steps of h on the exact grid. Output times between grid points (a grid that is not uniform) keep torchsde's own
time, and its linear interpolation between steps.
"""

from __future__ import annotations

from typing import Any

import torch
import torchsde
from torch import nn

from solvers.base import GradientMethod, trainable
from solvers.core import check_times, fixed_grid


class _ODEAsSDE(nn.Module):
    """dy = f(t, y) dt + 0 dW on a (batch, n) view of the state, so torchsde can step an ODE."""

    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self, field, shape: torch.Size) -> None:
        super().__init__()
        self.field = field
        self.shape = shape
        self.params = nn.ParameterList()  # parameters reach torchsde through adjoint_params

    def f(self, t, y):
        return self.field(t, y.reshape(self.shape)).reshape(y.shape)

    def g(self, t, y):
        return torch.zeros_like(y)


class _StepCounterTime(nn.Module):
    """dy/ds = h f(t_s, y): the field in the step counter s of a uniform grid (t_s the grid's s-th time)."""

    def __init__(self, field, times: torch.Tensor, h: float) -> None:
        super().__init__()
        self.field, self.times, self.h = field, times, h

    def forward(self, s, y):
        k = int(round(float(s)))
        return self.field(self.times[k], y) * self.h


class ReversibleHeun(GradientMethod):
    name = "reversible_heun"
    own_scheme = "reversible Heun"

    def _sdeint(self, sde, y0, ts, bm, params, dt: float | None = None) -> torch.Tensor:
        return torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, method="reversible_heun",
                                       adjoint_method="adjoint_reversible_heun", dt=dt or self.solver.step_size,
                                       adjoint_params=params)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        flat = y0.reshape(y0.shape[0], -1) if y0.ndim >= 2 else y0.reshape(1, -1)
        params = trainable(field)
        grid = fixed_grid(check_times(ts), self.solver.step_size)
        steps = [b - a for a, b in zip(grid.times[:-1], grid.times[1:])]
        uniform = all(abs(d - steps[0]) <= 1e-12 * abs(steps[0]) for d in steps)
        if uniform:  # exact grid: torchsde steps the step counter s = 0, 1, ..., n (see the module's docstring)
            times = torch.tensor(grid.times, dtype=ts.dtype, device=ts.device)
            field = _StepCounterTime(field, times, (grid.times[-1] - grid.times[0]) / grid.steps)
            ts = torch.tensor([float(k) for k in grid.outputs], dtype=ts.dtype, device=ts.device)
        sde = _ODEAsSDE(field, y0.shape)
        bm = torchsde.BrownianInterval(t0=float(ts.min()), t1=float(ts.max()), size=flat.shape, dtype=y0.dtype,
                                       device=y0.device, entropy=0)
        ys = self._sdeint(sde, flat, ts, bm, params, dt=1.0 if uniform else None)
        return ys.reshape(len(ts), *y0.shape)

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        return self._sdeint(sde, y0, ts, bm, trainable(sde))
