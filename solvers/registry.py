"""Which `solver=` names exist and how each steps: built from torchdiffeq's own solver table and our tableaus.

torchdiffeq dispatches `odeint(method=name)` through one dict of solver classes (`torchdiffeq._impl.odeint.SOLVERS`);
whether a solver chooses its own steps is read from its class (an `AdaptiveStepsizeODESolver` takes rtol/atol, a
`FixedGridODESolver` takes `step_size`), so a solver a newer torchdiffeq adds needs only its YAML in conf/solver/.
A class of neither kind (torchdiffeq's `scipy_solver`, which needs SciPy and options of its own) is left out. The
tableaus of solvers/tableaus.py add the schemes only the harness's stepping core has (for methods that step
themselves), and give a tableau to the torchdiffeq names that have one (dopri5, bosh3, midpoint, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS
from torchdiffeq._impl.solvers import AdaptiveStepsizeODESolver, FixedGridODESolver

from solvers.tableaus import ALIASES, TABLEAUS, Tableau, get_tableau, has_tableau

ADAPTIVE, FIXED = "adaptive", "fixed"


@dataclass(frozen=True)
class SolverEntry:
    """One `solver=` name: how torchdiffeq steps it (`ADAPTIVE`, `FIXED`, or None when torchdiffeq lacks it) and its
    Butcher tableau in solvers/tableaus.py (None when the stepping core has none)."""

    name: str
    torchdiffeq: str | None
    tableau: Tableau | None

    @property
    def torchdiffeq_adaptive(self) -> bool:
        return self.torchdiffeq == ADAPTIVE


def _torchdiffeq_kind(solver_class: type) -> str | None:
    if issubclass(solver_class, AdaptiveStepsizeODESolver):
        return ADAPTIVE
    if issubclass(solver_class, FixedGridODESolver):
        return FIXED
    return None


def _entries() -> dict[str, SolverEntry]:
    kinds = {name: _torchdiffeq_kind(cls) for name, cls in _TORCHDIFFEQ_SOLVERS.items()}
    names = [name for kind in (ADAPTIVE, FIXED) for name, k in kinds.items() if k == kind]  # adaptive ones first
    names += [name for name in (*TABLEAUS, *ALIASES) if name not in names]
    return {name: SolverEntry(name, kinds.get(name), get_tableau(name) if has_tableau(name) else None)
            for name in names}


SOLVERS: dict[str, SolverEntry] = _entries()
TORCHDIFFEQ_SOLVERS: tuple[str, ...] = tuple(name for name, entry in SOLVERS.items() if entry.torchdiffeq)


def solver_entry(name: str) -> SolverEntry:
    """The entry called `name`; a ValueError naming every choice otherwise."""
    if name not in SOLVERS:
        raise ValueError(f"solver={name!r} is not a known solver; choose one of {', '.join(SOLVERS)}")
    return SOLVERS[name]
