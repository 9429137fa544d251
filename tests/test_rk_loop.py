"""The shared Runge–Kutta loop's fused pieces (solvers/rk.py): they must compute what the plain formulas compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from solvers.rk import ODETerm, accumulate, rk_increment, vjp
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
