"""The continuous adjoint ("optimise-then-discretise"), torchdiffeq's `odeint_adjoint`, with an explicit norm.

SDEs (`solve_sde`): torchsde's `sdeint_adjoint` with `sde_solver` / `sde_dt`.

The backward pass solves the augmented system [a_t, y, a_y, a_theta] backwards in time. Its memory does not grow
with the number of steps; its gradient is exact only up to the backward solve's tolerance. The norm (`norm=`)
decides which of those channels the backward step-size controller looks at: with `seminorm` it ignores the
parameter adjoints, which is the whole of the seminorm paper's speed-up.
"""

from __future__ import annotations

from typing import Any

import torch
import torchdiffeq
import torchsde
from torch import nn

from solvers.base import GradientMethod, SolverSpec, backward_tolerances, trainable
from solvers.norms import get_norm
from solvers.sde import SDESpec


class ContinuousAdjoint(GradientMethod):
    name = "adjoint"
    backward_solve = True
    supports_jump_t = True

    def __init__(
        self,
        solver: SolverSpec,
        norm: str = "default",
        adjoint_rtol: float | None = None,
        adjoint_atol: float | None = None,
        sde_solver: str = "reversible_heun",
        sde_dt: float = 0.01,
    ) -> None:
        super().__init__(solver, norm)
        self.sde = SDESpec(sde_solver, sde_dt)
        self.adjoint_rtol, self.adjoint_atol = backward_tolerances(solver, adjoint_rtol, adjoint_atol)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
               jump_t: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = self.solver.odeint_kwargs(jump_t)  # the backward solve gets jump_t too (torchdiffeq flips it in time)
        adjoint_options = dict(kwargs["options"])
        if self.solver.adaptive:
            adjoint_options["norm"] = get_norm(self.norm, times=len(ts))
            kwargs.update(adjoint_rtol=self.adjoint_rtol, adjoint_atol=self.adjoint_atol)
        return torchdiffeq.odeint_adjoint(
            field, y0, ts, adjoint_options=adjoint_options, adjoint_params=trainable(field), **kwargs
        )

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        """torchsde.sdeint_adjoint: the adjoint SDE solved backwards with the same Brownian sample (torchsde picks
        the adjoint solver: adjoint_reversible_heun for reversible_heun, which makes the gradient exact). The
        norm steers only ODE solves (torchsde's SDE solves here take fixed steps)."""
        self.sde.check(sde)
        return torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, adjoint_params=trainable(sde), **self.sde.sdeint_kwargs())

    def describe(self) -> dict[str, Any]:
        if not self.solver.adaptive:
            return {}
        return {"adjoint_rtol": self.adjoint_rtol, "adjoint_atol": self.adjoint_atol}
