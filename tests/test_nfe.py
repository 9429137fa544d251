"""NFE and step counts against numbers derived by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from solvers.adjoint import ContinuousAdjoint
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop

STAGES = {"euler": 1, "midpoint": 2, "heun3": 3, "rk4": 4}


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2, 2)

    def forward(self, t, y):
        return torch.tanh(self.lin(y))


def _counts(method, ts):
    y0 = torch.ones(3, 2)
    method.solve(Field(), y0, ts).pow(2).sum().backward()
    return method.nfe.take()


@pytest.mark.parametrize("solver", sorted(STAGES))
def test_fixed_step_counts(solver):
    """T = 1, h = 0.25: 4 steps of `stages` evaluations, forward; the adjoint retraces the same grid backwards;
    direct backprop calls the field only forwards."""
    ts = torch.tensor([0.0, 0.5, 1.0])  # output times on the grid cost nothing extra
    spec = SolverSpec(solver, step_size=0.25)
    direct = _counts(DirectBackprop(spec), ts)
    adjoint = _counts(ContinuousAdjoint(spec), ts)
    expected = 4 * STAGES[solver]
    assert (direct.fwd_nfe, direct.bwd_nfe, direct.fwd_steps, direct.bwd_steps) == (expected, 0, 4, 0)
    # backwards: one solve per output interval, 2 steps each
    assert (adjoint.fwd_nfe, adjoint.bwd_nfe, adjoint.fwd_steps, adjoint.bwd_steps) == (expected, expected, 4, 4)


def test_dopri5_counts_follow_its_tableau():
    """dopri5 in torchdiffeq: 2 evaluations to pick the first step, then 6 per attempted step (the 7th stage is
    the next step's first: first-same-as-last), rejected attempts included."""
    ts = torch.tensor([0.0, 3.0])
    spec = SolverSpec("dopri5", rtol=1e-7, atol=1e-9)
    counts = _counts(DirectBackprop(spec), ts)
    assert counts.fwd_steps > 3
    assert counts.fwd_nfe == 2 + 6 * counts.fwd_steps
    adjoint = _counts(ContinuousAdjoint(spec), ts)
    assert adjoint.bwd_nfe == 2 + 6 * adjoint.bwd_steps


def test_forward_nfe_does_not_depend_on_the_gradient_method():
    ts = torch.tensor([0.0, 1.0, 2.0])
    spec = SolverSpec("dopri5", rtol=1e-5, atol=1e-7)
    direct = _counts(DirectBackprop(spec), ts)
    for norm in ("default", "seminorm"):
        assert _counts(ContinuousAdjoint(spec, norm=norm), ts).fwd_nfe == direct.fwd_nfe
    assert direct.bwd_nfe == 0


def test_evaluations_without_gradient_are_forward():
    spec = SolverSpec("rk4", step_size=0.5)
    method = ContinuousAdjoint(spec)
    with torch.no_grad():
        method.solve(Field(), torch.ones(1, 2), torch.tensor([0.0, 1.0]))
    assert method.nfe.take().as_dict() == {"fwd_nfe": 8, "bwd_nfe": 0, "fwd_steps": 2, "fwd_rejected": 0,
                                           "bwd_steps": 0, "bwd_rejected": 0}


def test_public_counter_api():
    """counter_of / unwrap / add_evaluations / report_step: what methods use instead of reaching into the wrapper."""
    from solvers.nfe import NFECounter, counter_of, report_step, unwrap

    field, counter = Field(), NFECounter()
    counted = counter.wrap(field, adaptive=True)
    assert counter_of(counted) is counter and unwrap(counted) is field
    assert counter_of(field) is None and unwrap(field) is field  # an uncounted field is its own module
    counted(torch.zeros(()), torch.ones(3, 2))
    counter.add_evaluations(5)
    report_step(counted, True)
    report_step(counted, False)
    report_step(field, True)  # a field without step callbacks is left alone
    counts = counter.take()
    assert (counts.fwd_nfe, counts.fwd_steps, counts.fwd_rejected, counts.bwd_nfe) == (6, 1, 1, 0)


def test_added_evaluations_count_as_backward_inside_a_backward_pass():
    from solvers.nfe import NFECounter

    counter = NFECounter()

    class Hook(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            counter.add_evaluations(3)
            return g

    Hook.apply(torch.ones(2, requires_grad=True)).sum().backward()
    assert counter.take().bwd_nfe == 3
