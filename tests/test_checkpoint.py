"""Recursive checkpointing: the binomial schedule is optimal and the online one is equinox's (counts and traces
equinox produced), the gradient equals direct backprop under both, the counts follow the schedule, and the memory is
the checkpoints, whatever the number of steps."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq
from torch import nn

from runs.memory import saved_tensor_meter
from solvers import online_checkpoint
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
    for schedule in ("offline", "online"):
        for checkpoints in (1, 2, 3, 8, None):
            method = RecursiveCheckpoint(spec, checkpoints=checkpoints, schedule=schedule)
            ys, grad = _gradient(method, field, y0, ts)
            assert torch.equal(ys, ys_ref)
            assert ((grad - ref).norm() / ref.norm()).item() < 1e-12, (schedule, checkpoints)


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


@pytest.mark.parametrize("schedule", ["offline", "online"])
def test_memory_is_the_checkpoints(schedule):
    torch.manual_seed(2)
    field = Field()
    y0 = torch.randn(256, 3, requires_grad=True)

    def graph_mib(steps):
        with saved_tensor_meter(field) as graph:
            ys = RecursiveCheckpoint(SolverSpec("midpoint", step_size=1 / steps), checkpoints=4,
                                     schedule=schedule).solve(field, y0, torch.tensor([0.0, 1.0]))
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


# Recomputations (backward body evaluations less the n U-turns) of equinox's checkpointed while loop, the loop
# diffrax's RecursiveCheckpointAdjoint runs, as equinox itself made them (jax 0.10.2, equinox 0.13.8, CPU):
#   python tests/reference/equinox_checkpoint_trace.py 1,2,3,4,8 1,2,3,4,5,6,7,8,9,10,12,15,21,30,40
#   python tests/reference/equinox_checkpoint_trace.py 2,4,8 100,499,1000,3000
# keyed (steps, checkpoints).
EQUINOX_RECOMPUTATIONS = {
    (1, 1): 0, (2, 1): 1, (3, 1): 3, (4, 1): 6, (5, 1): 10, (6, 1): 15, (7, 1): 21, (8, 1): 28, (9, 1): 36,
    (10, 1): 45, (12, 1): 66, (15, 1): 105, (21, 1): 210, (30, 1): 435, (40, 1): 780, (1, 2): 0, (2, 2): 0,
    (3, 2): 1, (4, 2): 2, (5, 2): 3, (6, 2): 6, (7, 2): 8, (8, 2): 11, (9, 2): 14, (10, 2): 18, (12, 2): 26,
    (15, 2): 39, (21, 2): 76, (30, 2): 158, (40, 2): 281, (100, 2): 1705, (499, 2): 41629, (1000, 2): 167127,
    (3000, 2): 1501420, (1, 3): 0, (2, 3): 0, (3, 3): 0, (4, 3): 1, (5, 3): 2, (6, 3): 3, (7, 3): 4, (8, 3): 5,
    (9, 3): 6, (10, 3): 9, (12, 3): 16, (15, 3): 20, (21, 3): 36, (30, 3): 66, (40, 3): 109, (1, 4): 0, (2, 4): 0,
    (3, 4): 0, (4, 4): 0, (5, 4): 1, (6, 4): 2, (7, 4): 3, (8, 4): 4, (9, 4): 5, (10, 4): 6, (12, 4): 8,
    (15, 4): 13, (21, 4): 29, (30, 4): 56, (40, 4): 74, (100, 4): 303, (499, 4): 4602, (1000, 4): 16701,
    (3000, 4): 161658, (1, 8): 0, (2, 8): 0, (3, 8): 0, (4, 8): 0, (5, 8): 0, (6, 8): 0, (7, 8): 0, (8, 8): 0,
    (9, 8): 1, (10, 8): 2, (12, 8): 4, (15, 8): 7, (21, 8): 13, (30, 8): 22, (40, 8): 32, (100, 8): 237,
    (499, 8): 2006, (1000, 8): 3835, (3000, 8): 15822,
}
# The step index of every backward body evaluation, in order (same commands).
EQUINOX_TRACES = {
    (10, 2): [9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 5, 6, 7, 4, 5, 6, 4, 5, 4, 0, 1, 2, 3, 2, 0, 1, 0],
    (12, 3): [11, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 7, 5, 6, 5, 0, 1, 2, 3, 4, 3, 2, 0, 1, 0],
    (21, 4): [20, 19, 15, 16, 17, 18, 17, 16, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 13, 11, 12, 11, 7,
        8, 9, 10, 9, 8, 7, 0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 0, 1, 2, 1, 0],
    (40, 8): [39, 36, 37, 38, 37, 36, 35, 30, 31, 32, 33, 34, 33, 32, 31, 30, 24, 25, 26, 27, 28, 29, 28, 27, 26, 25,
        24, 17, 18, 19, 20, 21, 22, 23, 22, 21, 20, 19, 18, 17, 9, 10, 11, 12, 13, 14, 15, 16, 15, 14, 13, 12, 11, 10,
        9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3, 2, 1, 0],
}


def _online_trace(n: int, c: int) -> list[int]:
    trace = []
    for kind, a, b in online_checkpoint.backward_actions(n, online_checkpoint.forward_stored(n, c), c):
        if kind == "advance":
            trace += range(a, b)
        elif kind == "uturn":
            trace.append(a)
    return trace


def test_online_schedule_is_equinoxs():
    for (n, c), expected in EQUINOX_RECOMPUTATIONS.items():
        assert online_checkpoint.recomputations(n, c) == expected, (n, c)
    for (n, c), expected in EQUINOX_TRACES.items():
        assert _online_trace(n, c) == expected, (n, c)


@pytest.mark.parametrize("checkpoints", [1, 2, 4, 8])
def test_online_recomputation_is_counted(checkpoints):
    """The NFE counter sees the schedule's recomputations (fixed steps; 100 steps of rk4)."""
    torch.manual_seed(1)
    method = RecursiveCheckpoint(SolverSpec("rk4", step_size=0.01), checkpoints=checkpoints, schedule="online")
    method.solve(Field(), torch.randn(2, 3, requires_grad=True), torch.tensor([0.0, 1.0])).sum().backward()
    counts = method.nfe.take()
    expected_steps = 100 + EQUINOX_RECOMPUTATIONS[(100, checkpoints)] if checkpoints > 1 else 100 + 99 * 100 // 2
    assert (counts.fwd_steps, counts.bwd_steps, counts.bwd_nfe) == (100, expected_steps, 4 * expected_steps)
