"""Direct backpropagation through the solver's operations ("discretise-then-optimise").

Exact gradient of the discrete forward solve; memory grows with the number of steps, since autograd keeps every
stage of every step (rejected steps of an adaptive solver included). No backward NFE: autograd replays the
recorded graph and never calls the field again.
"""

from __future__ import annotations

from typing import Any

import torch
import torchdiffeq
import torchsde
from torch import nn

from solvers.base import GradientMethod, SolverSpec
from solvers.sde import SDESpec


class DirectBackprop(GradientMethod):
    """SDEs: backprop through torchsde.sdeint's operations (`sde_solver`, `sde_dt`)."""

    name = "direct"
    supports_jump_t = True

    def __init__(self, solver: SolverSpec, norm: str = "default", sde_solver: str = "reversible_heun",
                 sde_dt: float = 0.01) -> None:
        super().__init__(solver, norm)
        self.sde = SDESpec(sde_solver, sde_dt)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
               jump_t: torch.Tensor | None = None) -> torch.Tensor:
        return torchdiffeq.odeint(field, y0, ts, **self.solver.odeint_kwargs(jump_t))

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        self.sde.check(sde)
        return torchsde.sdeint(sde, y0, ts, bm=bm, **self.sde.sdeint_kwargs())
