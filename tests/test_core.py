"""The stepping core's fused pieces (solvers/core/): they must compute what the plain formulas compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from solvers.core import ODETerm, accumulate, rk_increment, vjp
from solvers.tableaus import TABLEAUS


def _field():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    return net, ODETerm(lambda t, y: net(y) * torch.cos(t))


@pytest.mark.parametrize("name", list(TABLEAUS))
def test_base_and_scale_fold_into_the_increment(name):
    """rk_increment(base=b, scale=s) is b + s * Psi (to round-off), and the error estimate ignores base and scale."""
    tableau = TABLEAUS[name]
    _, term = _field()
    y, base = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    psi = rk_increment(term, tableau, t, -0.1, y)
    folded = rk_increment(term, tableau, t, -0.1, y, base=base, scale=-1.0)
    assert torch.allclose(folded, base - psi, rtol=1e-15, atol=1e-15)
    assert not torch.equal(folded, base)  # the step moved
    if tableau.embedded:
        _, err = rk_increment(term, tableau, t, -0.1, y, error=True)
        _, err_folded = rk_increment(term, tableau, t, -0.1, y, error=True, base=base, scale=-1.0)
        assert torch.equal(err, err_folded) and err.abs().max() > 0


def test_vjp_equals_autograd_grad_including_unused_inputs():
    net, term = _field()
    unused = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    out = rk_increment(term, TABLEAUS["rk4"], torch.tensor(0.0, dtype=torch.float64), 0.1, y)
    cotangent = torch.randn_like(out)
    inputs = (y, *net.parameters(), unused)
    ref = torch.autograd.grad(out, inputs, grad_outputs=cotangent, allow_unused=True, retain_graph=True)
    ours = vjp(out, inputs, cotangent)
    assert ours[-1] is None and ref[-1] is None
    for a, b in zip(ours[:-1], ref[:-1]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("with_none", [False, True])
def test_accumulate_adds_and_subtracts_in_place(with_none):
    total = [torch.ones(2), torch.ones(3)]
    new = (torch.full((2,), 2.0), None if with_none else torch.full((3,), 5.0))
    accumulate(total, new)
    accumulate(total, new, subtract=True)
    accumulate(total, new, subtract=True)
    assert torch.equal(total[0], torch.full((2,), -1.0))
    assert torch.equal(total[1], torch.ones(3) if with_none else torch.full((3,), -4.0))


class _Halving:
    """A toy stepper whose state is (y, steps taken): y halves each step; no error estimate (fixed grids only)."""

    field = None

    def step(self, t0, t1, state):
        y, n = state
        return y / 2, n + 1

    def solution(self, state):
        return state[0]


def test_integrate_steps_the_fixed_grid_of_any_stepper():
    """The one loop: every grid state seen by `keep`, outputs at the output times, the final state returned."""
    from solvers.core import Schedule, integrate

    schedule = Schedule.fixed(torch.tensor([0.0, 0.5, 1.0]), 0.25)
    seen = []
    outputs, final, grid = integrate(_Halving(), schedule, (torch.ones(()), 0), keep=lambda i, s: seen.append(i))
    assert seen == [0, 1, 2, 3, 4] and final[1] == 4 and grid.outputs == [0, 2, 4]
    assert [float(y) for y in outputs] == [1.0, 0.25, 0.0625]


def test_a_stepping_methods_public_stepper_counts_like_its_solve():
    """`SteppingMethod.stepper(field)`: the stepper a solve uses, counted by the method's own counter."""
    from solvers.base import SolverSpec
    from solvers.checkpoint import RecursiveCheckpoint
    from solvers.nfe import report_step
    from solvers.reversible import Reversible

    net, _ = _field()
    spec = SolverSpec("midpoint", step_size=0.1)
    y = torch.randn(4, 3, dtype=torch.float64)
    for method in (Reversible(spec), RecursiveCheckpoint(spec)):
        stepper = method.stepper(lambda t, x: net(x))
        state = (y, y) if isinstance(method, Reversible) else y
        with torch.no_grad():
            stepper.step(0.0, 0.1, state)
        report_step(stepper.field, True)
        counts = method.nfe.take()
        assert (counts.fwd_nfe, counts.fwd_steps) == ((4, 1) if isinstance(method, Reversible) else (2, 1))


def test_warm_start_rule():
    """`WarmStart`: the next solve's first step is the last recorded one, at most the solve's span; none when off."""
    from solvers.core import WarmStart

    assert WarmStart(False, 0.3).first_step(1.0) is None and WarmStart(True).first_step(1.0) is None
    warm = WarmStart(True, 0.3)
    assert warm.first_step(1.0) == 0.3 and warm.first_step(-0.1) == 0.1
    watched = warm.watch(lambda t, y: 2 * y)  # a field for torchdiffeq: its accepted steps are recorded
    watched.callback_step(None, None, torch.tensor(-0.05))
    assert warm.step == pytest.approx(0.05) and torch.equal(watched(0.0, torch.ones(2)), torch.full((2,), 2.0))


def test_adaptive_solve_starts_warm_and_records_its_last_step():
    """A schedule with a warm start takes its first step from it (no initial-step evaluations) and leaves there the
    size the controller chose for its last accepted step (before cutting it to land on the end); an error norm given
    to the controller replaces the RMS (the RMS itself gives the same steps as the default)."""
    from solvers.core import PlainStepper, Schedule, StepController, WarmStart, integrate, rms_norm
    from solvers.tableaus import TABLEAUS

    net, term = _field()
    calls = []

    def field(t, y):
        calls.append(float(t))
        return net(y) * torch.cos(t)

    stepper = PlainStepper(ODETerm(field), TABLEAUS["dopri5"])
    y0 = torch.randn(4, 3, dtype=torch.float64)

    def solve(warm, norm=None):
        calls.clear()
        schedule = Schedule([0.0, 1.0], None, StepController(1e-6, 1e-6, 4, norm=norm), None, warm_start=warm)
        outputs, _, grid = integrate(stepper, schedule, y0)
        return outputs[-1], grid.times

    cold_y, cold_grid = solve(None)
    assert torch.equal(solve(None, rms_norm)[0], cold_y)
    warm = WarmStart(True, 0.05)
    warm_y, warm_grid = solve(warm)
    assert warm_grid[1] == pytest.approx(0.05) and calls[0] == 0.0 and len(calls) % 7 == 0  # no initial-step calls
    assert warm.step >= warm_grid[-1] - warm_grid[-2] and torch.allclose(warm_y, cold_y, atol=1e-5)
    _, max_grid = solve(WarmStart(True), norm=lambda x: x.abs().max())  # a stricter norm: more steps
    assert len(max_grid) >= len(cold_grid)
