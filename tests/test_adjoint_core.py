"""The continuous adjoint on the stepping core (`method=adjoint_core`) against direct backprop and torchdiffeq's."""

from __future__ import annotations

import pytest
import torch
from test_gq import PROBLEMS, TimeMLP, _grads, _problem, _rel

from solvers.adjoint import ContinuousAdjoint
from solvers.adjoint_core import CoreAdjoint
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop

TIGHT = SolverSpec("dopri5", rtol=1e-10, atol=1e-10)
REFERENCE = SolverSpec("dopri5", rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_core_adjoint_matches_direct_backprop_in_float64(name, warm_start):
    """Acceptance: at a tight tolerance every gradient (parameters, y0, output times) is direct backprop's within
    1e-6 relative (measured: about 1e-10)."""
    field, y0, ts = _problem(name)
    ref = _grads(DirectBackprop(REFERENCE), field, y0, ts)
    ours = _grads(CoreAdjoint(TIGHT, warm_start=warm_start), field, y0, ts)
    for k in range(3):
        assert _rel(ours[k], ref[k]) < 1e-6


@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8])
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_core_adjoint_matches_torchdiffeqs_to_the_tolerance(name, tol):
    """Acceptance: the same continuous adjoint as torchdiffeq's, up to the backward solve's tolerance (the two take
    different steps: ours land on each interval's end, torchdiffeq's step past it and interpolate). Without the warm
    start both pick their first step by the same rule and reuse the first-same-as-last stage, so the backward solves
    cost the same number of evaluations to within 10% or one dopri5 step (ours may shrink a step after an accepted
    one, torchdiffeq's never does)."""
    field, y0, ts = _problem(name)
    spec = SolverSpec("dopri5", rtol=tol, atol=tol)
    theirs, cold = ContinuousAdjoint(spec), CoreAdjoint(spec, warm_start=False)
    a, b = _grads(theirs, field, y0, ts), _grads(cold, field, y0, ts)
    for k in range(3):
        assert _rel(b[k], a[k]) < 10 * tol
    their_counts, our_counts = theirs.nfe.take(), cold.nfe.take()
    assert their_counts.fwd_nfe == our_counts.fwd_nfe  # the very same forward solve
    assert abs(our_counts.bwd_nfe - their_counts.bwd_nfe) <= max(0.1 * their_counts.bwd_nfe, 6)


def test_warm_start_saves_the_adjoints_evaluations_not_its_accuracy():
    """The warm start is a property of a backward solve: on the adjoint it saves as much as on GQ."""
    field, y0, ts = _problem("nine_intervals")
    ref = _grads(DirectBackprop(REFERENCE), field, y0, ts)
    spec = SolverSpec("dopri5", rtol=1e-4, atol=1e-4)
    cold, warm = CoreAdjoint(spec, warm_start=False), CoreAdjoint(spec, warm_start=True)
    cold_grads, warm_grads = _grads(cold, field, y0, ts), _grads(warm, field, y0, ts)
    cold_counts, warm_counts = cold.nfe.take(), warm.nfe.take()
    assert warm_counts.bwd_nfe < 0.7 * cold_counts.bwd_nfe
    for k in range(2):
        assert _rel(warm_grads[k], ref[k]) < 1.1 * _rel(cold_grads[k], ref[k])


def test_norms_steer_the_core_adjoint_as_they_steer_torchdiffeqs():
    """The norm sees (a_t, y, a_y, *a_theta) as torchdiffeq's does: the seminorm drops the parameter channels and
    takes fewer backward steps, as on torchdiffeq's adjoint."""
    torch.manual_seed(3)
    field = TimeMLP(2, 32, 1.5).double()
    y0 = torch.randn(20, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    spec = SolverSpec("dopri5", rtol=1e-6, atol=1e-6)
    counts = {}
    for norm in ("default", "seminorm"):
        for method in (ContinuousAdjoint(spec, norm=norm), CoreAdjoint(spec, norm=norm, warm_start=False)):
            _grads(method, field, y0, ts)
            counts[method.name, norm] = method.nfe.take().bwd_nfe
    assert counts["adjoint_core", "seminorm"] < counts["adjoint_core", "default"]
    assert counts["adjoint", "seminorm"] < counts["adjoint", "default"]


def test_fixed_steps_and_other_tableaus():
    """A fixed step (the backward solve steps the same tableau) and bosh3 / adaptive_heun (no first-same-as-last
    reuse for heun) give direct backprop's gradient to within their accuracy."""
    field, y0, ts = _problem("three_times")
    ref = _grads(DirectBackprop(REFERENCE), field, y0, ts)[0]
    assert _rel(_grads(CoreAdjoint(SolverSpec("rk4", step_size=0.01)), field, y0, ts)[0], ref) < 1e-6
    for name in ("bosh3", "adaptive_heun"):
        assert _rel(_grads(CoreAdjoint(SolverSpec(name, rtol=1e-8, atol=1e-8)), field, y0, ts)[0], ref) < 1e-5


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="warm_start"):
        CoreAdjoint(TIGHT, warm_start="yes")
    with pytest.raises(ValueError, match="no Butcher tableau"):
        CoreAdjoint(SolverSpec("dopri8", rtol=1e-6, atol=1e-6))
