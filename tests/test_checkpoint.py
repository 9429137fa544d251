"""Binomial checkpointing: the schedule is optimal, its gradient equals direct backprop, its counts follow the
schedule, and its memory is the checkpoints, whatever the number of steps."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq
from torch import nn

from runs.memory import saved_tensor_meter
from solvers.base import SolverSpec
from solvers.checkpoint import RecursiveCheckpoint, backward_recomputations, first_descent, recomputations, split
from solvers.direct_rk import DirectRK


def _brute_force(n_max: int, free_max: int):
    """R(n, s) = min_m m + R(n - m, s - 1) + R(m, s): the fewest advances, by exhaustive search."""
    best = {(n, 0): n * (n - 1) // 2 for n in range(1, n_max + 1)}
    argmins = {}
    for s in range(1, free_max + 1):
        best[(1, s)] = 0
        for n in range(2, n_max + 1):
            costs = {m: m + best[(n - m, s - 1)] + best[(m, s)] for m in range(1, n)}
            best[(n, s)] = min(costs.values())
            argmins[(n, s)] = {m for m, c in costs.items() if c == best[(n, s)]}
    return best, argmins


def test_schedule_is_optimal():
    best, argmins = _brute_force(60, 4)
    for (n, s), cost in best.items():
        assert recomputations(n, s) == cost, (n, s)
        if n >= 2 and s >= 1:
            assert split(n, s) in argmins[(n, s)], (n, s)


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 12), nn.Tanh(), nn.Linear(12, 3))

    def forward(self, t, y):
        return self.net(y) * (1 + t)


def _gradient(method, field, y0, ts):
    field.zero_grad()
    x = y0.clone().requires_grad_(True)
    ys = method.solve(field, x, ts)
    ((ys[1:] ** 2).sum() + ys[-1].sin().sum()).backward()
    return ys.detach(), torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])


@pytest.mark.parametrize("spec", [SolverSpec("rk4", step_size=0.02), SolverSpec("tsit5", rtol=1e-7, atol=1e-9),
                                  SolverSpec("bosh3", rtol=1e-5, atol=1e-7, options={"outputs": "interpolate"})],
                         ids=["rk4-fixed", "tsit5-adaptive", "bosh3-interpolated"])
def test_checkpointing_equals_direct_backprop(spec):
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    ys_ref, ref = _gradient(DirectRK(spec), field, y0, ts)
    for checkpoints in (1, 2, 3, 8, None):
        ys, grad = _gradient(RecursiveCheckpoint(spec, checkpoints=checkpoints), field, y0, ts)
        assert torch.equal(ys, ys_ref)
        assert ((grad - ref).norm() / ref.norm()).item() < 1e-12, checkpoints


@pytest.mark.parametrize("checkpoints", [1, 2, 4, 8])
def test_recomputation_follows_the_schedule(checkpoints):
    """100 steps of rk4: forward 4 evaluations per step; backward: every step once with a graph plus the schedule's
    advances, less the first descent's, which the forward pass stored."""
    torch.manual_seed(1)
    method = RecursiveCheckpoint(SolverSpec("rk4", step_size=0.01), checkpoints=checkpoints)
    method.solve(Field(), torch.randn(2, 3, requires_grad=True), torch.tensor([0.0, 1.0])).sum().backward()
    counts = method.nfe.take()
    free = checkpoints - 1
    stored = first_descent(100, free)
    expected_steps = 100 + recomputations(100, free) - (stored[-1] if stored else 0)
    assert expected_steps == 100 + backward_recomputations(100, free)
    assert (counts.fwd_nfe, counts.fwd_steps) == (400, 100)
    assert (counts.bwd_steps, counts.bwd_nfe) == (expected_steps, 4 * expected_steps)


def test_memory_is_the_checkpoints():
    torch.manual_seed(2)
    field = Field()
    y0 = torch.randn(256, 3, requires_grad=True)

    def graph_mib(steps):
        with saved_tensor_meter(field) as graph:
            ys = RecursiveCheckpoint(SolverSpec("midpoint", step_size=1 / steps), checkpoints=4).solve(
                field, y0, torch.tensor([0.0, 1.0]))
        ys.sum().backward()
        return graph["mib"]

    small, large = graph_mib(20), graph_mib(200)
    assert large <= 1.1 * small
    assert small <= 5 * y0.numel() * 4 / 2**20  # y0 and 3 more states


@pytest.mark.parametrize("name", ["euler", "midpoint"])
def test_own_stepping_loop_is_torchdiffeqs_discrete_solve(name):
    """Where torchdiffeq has the same scheme and the output times lie on its grid, our loop takes the same steps."""
    torch.manual_seed(3)
    field = Field().double()
    y0 = torch.randn(3, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    ours = DirectRK(SolverSpec(name, step_size=0.125)).solve(field, y0, ts)
    theirs = torchdiffeq.odeint(field, y0, ts, method=name, options={"step_size": 0.125})
    assert torch.allclose(ours, theirs, rtol=1e-14, atol=1e-14)
