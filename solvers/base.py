"""The interface every gradient method implements, and the solver settings it is given.

*How a step is taken* (`SolverSpec`: a solver name, tolerances or a step size) and *how the gradient is computed*
(`GradientMethod`: direct backprop, adjoint, GQ, reversible, ...) are independent axes, as in diffrax: a method
never hard-codes a solver. A task only ever calls `method.solve(field, y0, ts)` (or `solve_sde`).

To add a method: subclass `GradientMethod` in a new file of this package, implement `_solve` (and `_solve_sde`
if it handles SDEs), then add `conf/method/<name>.yaml` with `_target_` naming the class.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from solvers.nfe import NFECounter
from solvers.norms import NORMS
from solvers.tableaus import ALIASES, TABLEAUS, get_tableau, has_tableau

log = logging.getLogger(__name__)

# torchdiffeq's solvers, by how they choose steps.
ADAPTIVE_SOLVERS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_SOLVERS = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
# Schemes only the harness's own stepping loop has (solvers/tableaus.py), for methods that step themselves.
TABLEAU_SOLVERS = tuple(name for name in (*TABLEAUS, *ALIASES) if name not in ADAPTIVE_SOLVERS + FIXED_SOLVERS)


@dataclass(frozen=True)
class SolverSpec:
    """How one solve steps: a solver name and either tolerances (adaptive) or a step size (fixed).

    Names are torchdiffeq's solvers and the tableaus of solvers/tableaus.py (`TABLEAU_SOLVERS`: e.g. ralston3,
    tsit5, heun), the latter only for methods that step themselves. A tableau with embedded weights (dopri5, bosh3,
    tsit5, heun) takes adaptive steps unless `step_size` is set; a fixed step of an adaptive torchdiffeq solver
    is again only for methods that step themselves (`GradientMethod.steps_itself`).
    """

    name: str
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    max_num_steps: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in ADAPTIVE_SOLVERS + FIXED_SOLVERS + TABLEAU_SOLVERS:
            raise ValueError(
                f"solver={self.name!r} is not a known solver; choose one of "
                f"{', '.join(ADAPTIVE_SOLVERS + FIXED_SOLVERS + TABLEAU_SOLVERS)}"
            )
        if self.adaptive:
            for key in ("rtol", "atol"):
                value = getattr(self, key)
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not (0 < value < 1):
                    raise ValueError(
                        f"solver.{key} must be a number in (0, 1) for the adaptive solver {self.name}, "
                        f"got {value!r}"
                    )
        elif self.step_size is not None and not (
            isinstance(self.step_size, (int, float)) and math.isfinite(self.step_size) and self.step_size > 0
        ):
            raise ValueError(f"solver.step_size must be a positive number, got {self.step_size!r}")
        if self.max_num_steps is not None and (not isinstance(self.max_num_steps, int) or self.max_num_steps < 1):
            raise ValueError(f"solver.max_num_steps must be a positive integer, got {self.max_num_steps!r}")

    @property
    def adaptive(self) -> bool:
        if self.name in TABLEAU_SOLVERS:
            return get_tableau(self.name).embedded and self.step_size is None
        return self.name in ADAPTIVE_SOLVERS and (self.step_size is None or not has_tableau(self.name))

    @property
    def torchdiffeq(self) -> bool:
        """Whether torchdiffeq can take these steps (its solver, and no fixed step forced on an adaptive one)."""
        return self.name in FIXED_SOLVERS or (self.name in ADAPTIVE_SOLVERS and self.adaptive)

    def odeint_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for torchdiffeq.odeint / odeint_adjoint."""
        options = dict(self.options)
        if self.adaptive:
            if self.max_num_steps is not None:
                options["max_num_steps"] = self.max_num_steps
            return {"method": self.name, "rtol": self.rtol, "atol": self.atol, "options": options}
        if self.step_size is not None:
            options["step_size"] = self.step_size
        # torchdiffeq's fixed-grid solvers ignore tolerances; pass harmless values.
        return {"method": self.name, "rtol": 1e-7, "atol": 1e-9, "options": options}


class GradientMethod(abc.ABC):
    """A differentiable solve and the way its gradient is computed.

    Class attributes a method declares:
      name            - the config name (`method=<name>`)
      backward_solve  - True when the backward pass is itself an adaptive solve that a norm can steer; norms
                        other than `default` are only meaningful (and only allowed) for such methods.
      supports_jump_t - True when `_solve` accepts the keyword `jump_t` (see `solve`).
    """

    name: ClassVar[str]
    backward_solve: ClassVar[bool] = False
    # True for methods that step the tableaus of solvers/tableaus.py themselves (solvers/rk.py) rather than
    # through torchdiffeq; decides which `solver=` names the method accepts.
    steps_itself: ClassVar[bool] = False
    supports_jump_t: ClassVar[bool] = False
    _warned_jump_t: bool = False

    def __init__(self, solver: SolverSpec, norm: str = "default") -> None:
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not a norm; choose one of {', '.join(NORMS)}")
        if norm != "default":
            if not self.backward_solve:
                raise ValueError(
                    f"norm={norm} steers the step size of a backward solve, and method={self.name} has none; "
                    f"use norm=default, or a method with a backward solve (e.g. method=adjoint)"
                )
            if not solver.adaptive:
                raise ValueError(
                    f"norm={norm} steers an adaptive step size, and solver={solver.name} takes fixed steps; "
                    f"use norm=default, or an adaptive solver (e.g. solver=dopri5)"
                )
        self.check_solver(solver)
        self.solver = solver
        self.norm = norm
        self.nfe = NFECounter()

    def check_solver(self, solver: SolverSpec) -> None:
        """Fail, in one sentence, on a solver this method cannot step."""
        own = "methods that step the tableaus themselves (e.g. method=reversible, checkpoint, direct_rk)"
        if self.steps_itself:
            if not has_tableau(solver.name):
                raise ValueError(
                    f"solver={solver.name} has no Butcher tableau in solvers/tableaus.py, and method={self.name} "
                    f"steps those itself; choose one of {', '.join((*TABLEAUS, *ALIASES))}"
                )
        elif solver.name not in ADAPTIVE_SOLVERS + FIXED_SOLVERS:
            raise ValueError(
                f"solver={solver.name} is not a torchdiffeq solver, and method={self.name} solves through "
                f"torchdiffeq; use one of {', '.join(ADAPTIVE_SOLVERS + FIXED_SOLVERS)}, or one of the {own}"
            )
        elif not solver.torchdiffeq:
            raise ValueError(
                f"solver={solver.name} with a fixed solver.step_size is not something torchdiffeq does, and "
                f"method={self.name} solves through torchdiffeq; drop solver.step_size, or use one of the {own}"
            )

    def solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
              jump_t: torch.Tensor | None = None) -> torch.Tensor:
        """Solve dy/dt = field(t, y) from y0, returning y at every time of `ts` (shape (len(ts), *y0.shape)).

        `jump_t` (optional): times where the field is discontinuous, e.g. the knots of a neural CDE's linear
        interpolation. An adaptive solver then ends a step exactly at each and restarts there (torchdiffeq's
        `jump_t` option; the seminorm paper's code did this with torchdiffeq 0.1's `grid_points`), forward and in an
        adjoint's backward solve. Methods that set `supports_jump_t` pass it on; the others, and fixed-step solvers,
        solve without it (logged once). Omitted or None: the behaviour of a plain `solve(field, y0, ts)`.
        """
        counted = self.nfe.wrap(field, self.solver.adaptive)
        if jump_t is None:
            return self._solve(counted, y0, ts)
        if not (self.supports_jump_t and self.solver.adaptive):
            if not self._warned_jump_t:
                log.warning("method=%s with solver=%s does not use jump_t; solving without it", self.name,
                            self.solver.name)
                self._warned_jump_t = True
            return self._solve(counted, y0, ts)
        return self._solve(counted, y0, ts, jump_t=jump_t)

    def solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        """Solve a torchsde SDE (drift `f`, diffusion `g`) driven by the Brownian object `bm`."""
        return self._solve_sde(self.nfe.wrap_sde(sde), y0, ts, bm)

    @abc.abstractmethod
    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor: ...

    def _solve_sde(self, sde: nn.Module, y0: torch.Tensor, ts: torch.Tensor, bm: Any) -> torch.Tensor:
        raise ValueError(f"method={self.name} does not solve SDEs")

    def describe(self) -> dict[str, Any]:
        """What the run record says about this method beyond its name (e.g. the backward tolerances)."""
        return {}
