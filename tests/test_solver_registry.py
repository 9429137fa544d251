"""The `solver=` registry is torchdiffeq's own solver table plus our tableaus, classified by solver class."""

from __future__ import annotations

import pytest
from torchdiffeq._impl.odeint import SOLVERS as TORCHDIFFEQ
from torchdiffeq._impl.solvers import AdaptiveStepsizeODESolver, FixedGridODESolver

from solvers.base import SolverSpec
from solvers.registry import ADAPTIVE, FIXED, SOLVERS, solver_entry
from solvers.tableaus import ALIASES, TABLEAUS


def test_every_torchdiffeq_solver_of_a_known_kind_is_registered_with_its_kind():
    for name, cls in TORCHDIFFEQ.items():
        if issubclass(cls, AdaptiveStepsizeODESolver):
            assert SOLVERS[name].torchdiffeq == ADAPTIVE, name
        elif issubclass(cls, FixedGridODESolver):
            assert SOLVERS[name].torchdiffeq == FIXED, name
        else:  # e.g. scipy_solver: neither kind, left out
            assert name not in SOLVERS
    for name in (*TABLEAUS, *ALIASES):
        assert SOLVERS[name].tableau is not None, name


@pytest.mark.parametrize(("name", "kind"), [("dopri5", ADAPTIVE), ("dopri8", ADAPTIVE), ("adaptive_heun", ADAPTIVE),
                                            ("rk4", FIXED), ("explicit_adams", FIXED), ("implicit_adams", FIXED),
                                            ("heun2", FIXED), ("tsit5", None), ("ralston3", None)])
def test_classification(name, kind):
    """As the name tuples had them: the Adams methods are fixed-grid, tsit5 and ralston3 exist only as tableaus."""
    assert solver_entry(name).torchdiffeq == kind
    if kind == FIXED:
        spec = SolverSpec(name, step_size=0.1)
        assert not spec.adaptive and spec.torchdiffeq


def test_unknown_solver_names_the_choices():
    with pytest.raises(ValueError, match=r"solver='nope' is not a known solver; choose one of .*dopri5.*tsit5"):
        SolverSpec("nope")


def test_step_size_on_an_adaptive_solver():
    """A tableau makes a fixed step of dopri5 possible (for methods that step themselves); dopri8 has none and
    stays adaptive, torchdiffeq's way."""
    assert not SolverSpec("dopri5", step_size=0.1).adaptive
    assert not SolverSpec("dopri5", step_size=0.1).torchdiffeq
    assert SolverSpec("dopri8", rtol=1e-3, atol=1e-6, step_size=0.1).adaptive
