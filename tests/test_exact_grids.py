"""Exact grids: a fixed-step solve of n steps of (t1 - t0) / n takes exactly n steps and ends at t1, for every
method, even where the running sum of the steps (10 x 0.1 = 0.9999999999999999) or torchdiffeq's step count
(1 / (1/49) = 49.000000000000007, so 51 grid points) misses t1."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from torch import nn

from runs.bench.common import compose_config
from runs.build import ConfigError, build_method
from solvers.base import SolverSpec
from solvers.reversible_heun import ReversibleHeun

METHODS = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml"))


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 10), nn.Tanh(), nn.Linear(10, 1))

    def forward(self, t, y):
        return self.net(y)


def _gradient(solve, field, y0):
    field.zero_grad(set_to_none=True)
    x = y0.clone().requires_grad_(True)
    out = solve(field, x)
    out.pow(2).sum().backward()
    return out.detach(), torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])


def _reversible_heun(field, y0, n: int, h: float) -> torch.Tensor:
    """Reversible Heun with zero noise on the grid t_k = k h (torchsde's step, written out), through autograd."""
    y = z = y0
    f0 = field(torch.tensor(0.0, dtype=y0.dtype), z)
    for k in range(n):
        z1 = 2 * y - z + f0 * h
        f1 = field(torch.tensor((k + 1) * h, dtype=y0.dtype), z1)
        y = y + (f0 + f1) * (0.5 * h)
        z, f0 = z1, f1
    return y


@pytest.mark.parametrize("n, t1", [(10, 1.0), (49, 1.0), (7, 0.7)])
def test_reversible_heun_matches_backprop_on_the_exact_grid(n, t1):
    """The issue's miss: 10 steps of 0.1 took an 11th step of 1e-16, and the adjoint retraced another grid."""
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.ones(1, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, t1], dtype=torch.float64)
    method = ReversibleHeun(SolverSpec("midpoint", step_size=t1 / n))
    out, grad = _gradient(lambda f, x: method.solve(f, x, ts)[-1], field, y0)
    assert method.nfe.take().fwd_nfe == n + 2  # the initial drift, one per step, and torchsde's last evaluation
    ref_out, ref = _gradient(lambda f, x: _reversible_heun(f, x, n, t1 / n), field, y0)
    assert torch.allclose(out, ref_out, rtol=1e-14, atol=0)
    assert ((grad - ref).norm() / ref.norm()).item() < 1e-10


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("n", [10, 49])
def test_every_fixed_step_method_takes_exactly_n_steps(name, n):
    cfg = compose_config([f"method={name}", "solver=midpoint", f"solver.step_size={1.0 / n!r}"])
    try:
        method = build_method(cfg)
    except ConfigError as exc:  # a method without fixed steps says so before it runs
        pytest.skip(f"method={name}: {exc}")
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.ones(2, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    _, grad = _gradient(lambda f, x: method.solve(f, x, ts)[-1], field, y0)
    counts = method.nfe.take()
    assert torch.isfinite(grad).all()
    if counts.fwd_steps:  # methods whose steps are reported (torchdiffeq's and the stepping core's)
        assert counts.fwd_steps == n, (name, counts)
    else:  # the others: each step costs the same evaluations, so the count is a multiple of n
        assert counts.fwd_nfe in (n, 2 * n, n + 1, n + 2), (name, counts)
