"""How an SDE solve steps (torchsde): the SDE counterpart of `SolverSpec`, shared by every method's `_solve_sde`.

The GQ paper trains its SDE baselines with torchsde's reversible Heun at dt = 0.01 (Stratonovich), whose adjoint
(`adjoint_reversible_heun`) reconstructs the forward path exactly; other Stratonovich solvers (midpoint,
euler_heun, heun) and Ito ones (euler, milstein, srk) are there to compare. torchsde picks the matching
adjoint solver itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STRATONOVICH_SOLVERS = ("reversible_heun", "midpoint", "euler_heun", "heun", "log_ode_midpoint")
ITO_SOLVERS = ("euler", "milstein", "srk")


@dataclass(frozen=True)
class SDESpec:
    """A torchsde solver name and a fixed step size."""

    method: str = "reversible_heun"
    dt: float = 0.01

    def __post_init__(self) -> None:
        if self.method not in STRATONOVICH_SOLVERS + ITO_SOLVERS:
            raise ValueError(f"method.sde_solver={self.method!r} is not a torchsde solver; choose one of "
                             f"{', '.join(STRATONOVICH_SOLVERS + ITO_SOLVERS)}")
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"method.sde_dt must be a positive number, got {self.dt!r}")

    def check(self, sde: Any) -> None:
        """An SDE of the wrong calculus for the solver fails here with one sentence, not deep inside torchsde."""
        kind = getattr(sde, "sde_type", "ito")
        allowed = STRATONOVICH_SOLVERS if kind == "stratonovich" else ITO_SOLVERS
        if self.method not in allowed:
            raise ValueError(f"method.sde_solver={self.method} does not solve {kind} SDEs; choose one of "
                             f"{', '.join(allowed)}")

    def sdeint_kwargs(self) -> dict[str, Any]:
        return {"method": self.method, "dt": self.dt}
