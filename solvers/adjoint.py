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

from solvers.base import GradientMethod, SolverSpec
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
        for key, value in (("adjoint_rtol", adjoint_rtol), ("adjoint_atol", adjoint_atol)):
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1):
                raise ValueError(f"method.{key} must be a number in (0, 1) or null, got {value!r}")
        self.adjoint_rtol = adjoint_rtol if adjoint_rtol is not None else solver.rtol
        self.adjoint_atol = adjoint_atol if adjoint_atol is not None else solver.atol

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
               jump_t: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = self.solver.odeint_kwargs()
        if jump_t is not None:
            kwargs["options"]["jump_t"] = jump_t  # the backward solve gets it too (torchdiffeq flips it in time)
        adjoint_options = dict(kwargs["options"])
        if self.solver.adaptive:
            adjoint_options["norm"] = get_norm(self.norm)
            kwargs.update(adjoint_rtol=self.adjoint_rtol, adjoint_atol=self.adjoint_atol)
        params = tuple(p for p in field.parameters() if p.requires_grad)
        return torchdiffeq.odeint_adjoint(
            field, y0, ts, adjoint_options=adjoint_options, adjoint_params=params, **kwargs
        )

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        """torchsde.sdeint_adjoint: the adjoint SDE solved backwards with the same Brownian sample (torchsde picks
        the adjoint solver: adjoint_reversible_heun for reversible_heun, which makes the gradient exact). The
        norm steers only ODE solves (torchsde's SDE solves here take fixed steps)."""
        self.sde.check(sde)
        params = tuple(p for p in sde.parameters() if p.requires_grad)
        return torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, adjoint_params=params, **self.sde.sdeint_kwargs())

    def describe(self) -> dict[str, Any]:
        if not self.solver.adaptive:
            return {}
        return {"adjoint_rtol": self.adjoint_rtol, "adjoint_atol": self.adjoint_atol}
