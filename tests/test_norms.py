"""Each norm is exactly the formula DESIGN.md gives it, and `default` makes torchdiffeq's own step decisions."""

from __future__ import annotations

import math

import pytest
import torch
import torchdiffeq
from torch import nn

from solvers.adjoint import ContinuousAdjoint
from solvers.base import SolverSpec
from solvers.norms import NORMS, default, paper_default, rms, seminorm

A_T = torch.tensor(-0.5)
Y = torch.tensor([3.0, 4.0])  # RMS sqrt(12.5)
A_Y = torch.tensor([1.0, 1.0, 1.0, 1.0])  # RMS 1
P1 = torch.tensor([6.0])  # RMS 6
P2 = torch.tensor([0.0, 0.0, 0.0])  # RMS 0
AUG = (A_T, Y, A_Y, P1, P2)


def test_formulas_by_hand():
    assert default(AUG).item() == pytest.approx(6.0)  # the largest single parameter tensor wins
    # all parameters as one vector: RMS sqrt(36 / 4) = 3, below RMS(y)
    assert paper_default(AUG).item() == pytest.approx(math.sqrt(12.5))
    assert paper_default((A_T, Y, A_Y, P1 * 2, P2)).item() == pytest.approx(math.sqrt(144 / 4))
    assert seminorm(AUG).item() == pytest.approx(math.sqrt(12.5))  # parameters and time ignored
    total = 0.25 + 25 + 4 + 36
    assert rms(AUG).item() == pytest.approx(math.sqrt(total / 11))  # 1 + 2 + 4 + 1 + 3 elements


def test_seminorm_ignores_time_and_parameters():
    big = (torch.tensor(1e6), Y, A_Y, P1 * 1e6, P2)
    assert seminorm(big) == seminorm(AUG)
    assert default(big) > default(AUG)


class MLPField(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))

    def forward(self, t, y):
        return self.net(y)


def _backward_nfe(norm: str | None) -> tuple[int, list[torch.Tensor]]:
    field = MLPField().double()
    y0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
    ts = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    calls = {"n": 0}

    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = field

        def forward(self, t, y):
            calls["n"] += 1
            return self.f(t, y)

    options = {} if norm is None else {"adjoint_options": {"norm": NORMS[norm]}}
    out = torchdiffeq.odeint_adjoint(Counted(), y0, ts, rtol=1e-6, atol=1e-8, method="dopri5", **options)
    before = calls["n"]
    out.pow(2).sum().backward()
    return calls["n"] - before, [p.grad for p in field.parameters()]


def test_default_makes_torchdiffeqs_own_decisions():
    ours, grads_ours = _backward_nfe("default")
    builtin, grads_builtin = _backward_nfe(None)
    assert ours == builtin
    for a, b in zip(grads_ours, grads_builtin):
        assert torch.equal(a, b)


def test_seminorm_needs_fewer_backward_evaluations():
    semi, _ = _backward_nfe("seminorm")
    full, _ = _backward_nfe("default")
    assert semi < full


def _method_backward_nfe(norm: str) -> int:
    method = ContinuousAdjoint(SolverSpec("dopri5", rtol=1e-6, atol=1e-8), norm=norm)
    y0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
    ts = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    method.solve(MLPField().double(), y0, ts).pow(2).sum().backward()
    return method.nfe.take().bwd_nfe


@pytest.mark.parametrize("norm", ["default", "seminorm", "paper_default", "rms"])
def test_adjoint_method_hands_its_norm_to_torchdiffeq(norm):
    assert _method_backward_nfe(norm) == _backward_nfe(norm)[0]
