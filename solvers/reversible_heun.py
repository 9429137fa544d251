"""Reversible Heun (Kidger, Foster, Li & Lyons 2021) with its exact adjoint, through torchsde.

`torchsde.sdeint_adjoint(method="reversible_heun", adjoint_method="adjoint_reversible_heun")`: an algebraically
reversible Stratonovich SDE solver whose backward pass reconstructs the forward states, so memory does not grow with
the number of steps. The paper of the reversible solvers compares against it (it is their scheme's ancestor, with
no coupling parameter: its linear stability region is a piece of the imaginary axis only). For ODEs we run the same
solver with zero diffusion, so the ODE baseline is the very same scheme. Fixed steps only (`solver.step_size`); the
solver's name is not used (the scheme is always reversible Heun), so any `solver=` with a step size will do.
torchsde interpolates linearly between steps to output times that are not on its grid.
"""

from __future__ import annotations

from typing import Any

import torch
import torchsde
from torch import nn

from solvers.base import GradientMethod, trainable


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


class ReversibleHeun(GradientMethod):
    name = "reversible_heun"
    own_scheme = "reversible Heun"

    def _sdeint(self, sde, y0, ts, bm, params) -> torch.Tensor:
        return torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, method="reversible_heun",
                                       adjoint_method="adjoint_reversible_heun", dt=self.solver.step_size,
                                       adjoint_params=params)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        flat = y0.reshape(y0.shape[0], -1) if y0.ndim >= 2 else y0.reshape(1, -1)
        sde = _ODEAsSDE(field, y0.shape)
        bm = torchsde.BrownianInterval(t0=float(ts.min()), t1=float(ts.max()), size=flat.shape, dtype=y0.dtype,
                                       device=y0.device, entropy=0)
        ys = self._sdeint(sde, flat, ts, bm, trainable(field))
        return ys.reshape(len(ts), *y0.shape)

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        return self._sdeint(sde, y0, ts, bm, trainable(sde))
