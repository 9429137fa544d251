"""Direct backprop through the harness's own Runge–Kutta stepping loop ("discretise-then-optimise").

The same discrete solve as `reversible`'s base scheme and `checkpoint` (same tableau, same grid: each interval
between output times cut into equal steps, outputs without interpolation), differentiated by autograd, which keeps
every stage of every step: memory grows with the number of steps. It exists for the schemes torchdiffeq lacks
(ralston3, tsit5, classic rk4 — torchdiffeq's `rk4` is the 3/8 rule — and fixed-step dopri5/bosh3) and as the
reference the memory-bounded methods are checked against. No backward NFE.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from solvers.base import GradientMethod, SolverSpec
from solvers.reversible import check_stratonovich
from solvers.rk import ODETerm, PlainStepper, Schedule, SDETerm
from solvers.tableaus import get_tableau


class DirectRK(GradientMethod):
    name = "direct_rk"
    steps_itself = True

    def __init__(self, solver: SolverSpec, norm: str = "default") -> None:
        super().__init__(solver, norm)
        self.tableau = get_tableau(solver.name)

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        stepper = PlainStepper(ODETerm(field), self.tableau, field=field)
        return torch.stack(stepper.run(Schedule.build(self.solver, self.tableau, ts), y0)[0])

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        check_stratonovich(self, sde, self.tableau)
        stepper = PlainStepper(SDETerm(sde), self.tableau, bm=bm, field=sde)
        return torch.stack(stepper.run(Schedule.build(self.solver, self.tableau, ts), y0)[0])
