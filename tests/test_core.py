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
