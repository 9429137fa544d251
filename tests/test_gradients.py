"""Every gradient method against direct backprop in float64 (and direct backprop against a closed form)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from solvers.adjoint import ContinuousAdjoint
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop
from tasks.models.cnf import CNFField, ConcatSquashNet

TIGHT = SolverSpec("dopri5", rtol=1e-10, atol=1e-10)
REL_TOL = 1e-6  # stated tolerance: adjoint vs direct, both at rtol = atol = 1e-10, float64


class Linear(nn.Module):
    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, y):
        return self.a * y


def test_direct_backprop_matches_closed_form():
    """dy/dt = a y: y(T) = y0 exp(aT), so dy(T)/da = T y0 exp(aT)."""
    field = Linear(0.7)
    y0 = torch.tensor([2.0], dtype=torch.float64)
    ts = torch.tensor([0.0, 1.5], dtype=torch.float64)
    DirectBackprop(TIGHT).solve(field, y0, ts)[-1].sum().backward()
    assert field.a.grad.item() == pytest.approx(1.5 * 2.0 * math.exp(0.7 * 1.5), rel=1e-8)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


def _gradient(method, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    field.zero_grad()
    y0 = y0.clone().requires_grad_(True)
    ys = method.solve(field, y0, ts)
    loss = (ys[1:] ** 2).sum() + ys[-1].sin().sum()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in field.parameters()] + [y0.grad.flatten()])


class MLPField(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Softplus(), nn.Linear(16, 3))

    def forward(self, t, y):
        return self.net(torch.cat([y[..., :2], y[..., 2:] * t], dim=-1))


@pytest.mark.parametrize("norm", ["default", "paper_default", "seminorm", "rms"])
def test_adjoint_matches_direct_in_float64(norm):
    torch.manual_seed(0)
    field = MLPField().double()
    y0 = torch.randn(5, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    reference = _gradient(DirectBackprop(TIGHT), field, y0, ts)
    adjoint = _gradient(ContinuousAdjoint(TIGHT, norm=norm), field, y0, ts)
    assert _relative_error(adjoint, reference) < REL_TOL


@pytest.mark.parametrize("norm", ["default", "seminorm"])
def test_adjoint_matches_direct_on_the_cnf_field(norm):
    """The CNF field differentiates through its own divergence (a second-order graph)."""
    torch.manual_seed(1)
    field = CNFField(ConcatSquashNet(2, 8, 2), dim=2).double()
    state0 = torch.cat([torch.randn(6, 2, dtype=torch.float64), torch.zeros(6, 1, dtype=torch.float64)], dim=1)
    ts = torch.tensor([0.0, 0.5], dtype=torch.float64)

    def gradient(method):
        field.zero_grad()
        method.solve(field, state0, ts)[-1].pow(2).sum().backward()
        return torch.cat([p.grad.flatten() for p in field.parameters()])

    assert _relative_error(gradient(ContinuousAdjoint(TIGHT, norm=norm)), gradient(DirectBackprop(TIGHT))) < REL_TOL


def test_fixed_step_adjoint_approaches_direct_as_steps_shrink():
    """With a fixed-step solver the adjoint is a different discretisation: its error against direct backprop
    must fall with the step size (rk4: by about 2^4 per halving)."""
    torch.manual_seed(2)
    field = MLPField().double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    errors = []
    for h in (0.25, 0.125, 0.0625):
        spec = SolverSpec("rk4", step_size=h)
        errors.append(_relative_error(_gradient(ContinuousAdjoint(spec), field, y0, ts),
                                      _gradient(DirectBackprop(spec), field, y0, ts)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] / errors[2] > 8
