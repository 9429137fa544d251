"""The tableau table, which solver each method accepts, the baselines (reversible Heun, MALI), and every new method
trained through the real entry point at smoke scale."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from conftest import make_config
from torch import nn

from runs.build import ConfigError, build_method
from runs.gradcheck import relative_error
from runs.loop import run
from solvers.base import SolverSpec
from solvers.core import fixed_grid
from solvers.direct import DirectBackprop
from solvers.mali import MALI, LeapfrogStepper
from solvers.reversible_heun import ReversibleHeun
from solvers.tableaus import TABLEAUS


def _conditions(b, c, a):
    """The order conditions of explicit RK up to order 4, as (order, lhs, rhs)."""
    s = len(b)
    ac = [sum(a[i][j] * c[j] for j in range(i)) for i in range(s)]
    ac2 = [sum(a[i][j] * c[j] ** 2 for j in range(i)) for i in range(s)]
    aac = [sum(a[i][j] * ac[j] for j in range(i)) for i in range(s)]
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))
    return [
        (1, sum(b), 1),
        (2, dot(b, c), Fraction(1, 2)),
        (3, dot(b, [x**2 for x in c]), Fraction(1, 3)),
        (3, dot(b, ac), Fraction(1, 6)),
        (4, dot(b, [x**3 for x in c]), Fraction(1, 4)),
        (4, dot(b, [x * y for x, y in zip(c, ac)]), Fraction(1, 8)),
        (4, dot(b, ac2), Fraction(1, 12)),
        (4, dot(b, aac), Fraction(1, 24)),
    ]


@pytest.mark.parametrize("name", list(TABLEAUS))
def test_tableau_satisfies_its_order_conditions(name):
    t = TABLEAUS[name]
    for i, row in enumerate(t.a):
        assert abs(sum(row) - t.c[i]) < 1e-14, (name, i)  # c_i = sum_j a_ij
    for weights, order in ((t.b, t.order), (t.b_embedded, t.embedded_order)):
        if weights is None:
            continue
        for k, lhs, rhs in _conditions(weights, t.c, t.a):
            if k <= min(order, 4):
                assert abs(lhs - float(rhs)) < 1e-13, (name, k, lhs, rhs)
        # and the first condition of the next order fails, so the stated order is the order (beyond 4: see the
        # convergence test in test_reversible.py)
        if order < 4:
            assert any(abs(lhs - float(rhs)) > 1e-6 for k, lhs, rhs in _conditions(weights, t.c, t.a) if k == order + 1)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["method=adjoint", "solver=tsit5"], "solver=tsit5 is not a torchdiffeq solver, and method=adjoint"),
        (["method=direct", "solver=ralston3"], "solver=ralston3 is not a torchdiffeq solver"),
        (["method=direct", "solver=dopri5", "+solver.step_size=0.1"], "with a fixed solver.step_size is not"),
        (["method=reversible", "solver=dopri8"], "solver=dopri8 has no Butcher tableau"),
        (["method=reversible", "method.coupling=0"], "method.coupling must be a number in (0, 1]"),
        (["method=checkpoint", "method.checkpoints=0"], "method.checkpoints must be a positive integer"),
        (["method=reversible_heun", "solver=dopri5"], "method=reversible_heun takes fixed steps"),
        (["method=reversible", "norm=seminorm"], "method=reversible has none"),
    ],
)
def test_impossible_combinations_fail_in_one_sentence(overrides, expected):
    with pytest.raises(ConfigError) as info:
        build_method(make_config("task=cnf_toy", *overrides))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["method=reversible", "solver=tsit5"],
        ["method=reversible", "solver=dopri5", "+solver.step_size=0.01"],
        ["method=checkpoint", "solver=ralston3"],
        ["method=direct_rk", "solver=heun"],
        ["method=direct", "solver=heun2"],
        ["method=adjoint", "solver=dopri5"],
    ],
)
def test_valid_combinations_build(overrides):
    assert build_method(make_config("task=cnf_toy", *overrides)).solver.name == overrides[1].split("=")[1]


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


def _gradient(method, field, y0, ts):
    field.zero_grad()
    x = y0.clone().requires_grad_(True)
    ys = method.solve(field, x, ts)
    ((ys[1:] ** 2).sum() + ys[-1].sin().sum()).backward()
    return torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])


@pytest.mark.parametrize("method_cls", [ReversibleHeun, MALI])
def test_second_order_baselines_approach_direct_backprop(method_cls):
    """Reversible Heun (torchsde) and MALI are second order: against the float64 reference their gradient error falls
    about 4x per halving of the step."""
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)  # on every step grid below
    ref = _gradient(DirectBackprop(SolverSpec("dopri5", rtol=1e-11, atol=1e-11)), field, y0, ts)
    errors = [((_gradient(method_cls(SolverSpec("midpoint", step_size=h)), field, y0, ts) - ref).norm() / ref.norm())
              .item() for h in (0.04, 0.02, 0.01)]
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.0 < coarse / fine < 5.0, errors


def test_mali_gradient_is_exact_for_its_own_discrete_solve():
    torch.manual_seed(1)
    field = Field().double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    grid, alf = fixed_grid([0.0, 0.3, 1.0], 0.01), LeapfrogStepper(field, 1.0)
    field.zero_grad()
    x = y0.clone().requires_grad_(True)
    z, v, outs = x, alf.f(0.0, x), [x]
    for n in range(grid.steps):
        z, v = alf.step(grid.times[n], grid.times[n + 1], (z, v))
        if n + 1 in grid.outputs:
            outs.append(z)
    ys = torch.stack(outs)
    ((ys[1:] ** 2).sum() + ys[-1].sin().sum()).backward()
    ref = torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])
    ours = _gradient(MALI(SolverSpec("midpoint", step_size=0.01)), field, y0, ts)
    assert ((ours - ref).norm() / ref.norm()).item() < 1e-10


@pytest.mark.parametrize(
    "overrides",
    [
        ["method=reversible", "solver=midpoint", "solver.step_size=0.1"],
        ["method=reversible", "solver=bosh3"],
        ["method=checkpoint", "solver=ralston3", "solver.step_size=0.1", "method.checkpoints=2"],
        ["method=direct_rk", "solver=tsit5"],
        ["method=reversible_heun", "solver=midpoint", "solver.step_size=0.1"],
        ["method=mali", "solver=midpoint", "solver.step_size=0.1"],
    ],
    ids=lambda o: "-".join(x.split("=")[1] for x in o[:2]),
)
def test_each_method_trains_through_the_entry_point(tmp_path, overrides):
    result = run(make_config("task=cnf_toy", "train.iterations=3", *overrides), tmp_path)
    assert result["status"] == "ok", result["error"]
    assert math.isfinite(result["final_loss"]) and result["fwd_nfe"] > 0
    if overrides[0] == "method=direct_rk":
        assert result["bwd_nfe"] == 0
    else:
        assert result["bwd_nfe"] > 0
    assert result["grad_rel_error"] < 0.05


def test_bench_section_reports_constant_reversible_memory(monkeypatch):
    """The `make bench` reversible section on tiny step counts (eager only): its table says the reversible graph does
    not grow with the steps while direct backprop's doubles, measures each checkpointing schedule's recomputations
    per step, and gives the cost model's verdict per cell (timings are the bench's business, not asserted here)."""
    import runs.bench.reversible as bench

    monkeypatch.setattr(bench, "CHECKPOINTS", (2,))
    monkeypatch.setattr(bench, "WIDE", (16, 8))
    text = bench.run_section(torch.device("cpu"), repeats=1, steps_grid=(10, 20), modes=("eager",), authors=False)
    rows = {line.split("|")[2].strip(): line for line in text.splitlines() if line.startswith("| 20 |")}
    assert set(rows) == {"reversible", "direct_rk", "direct (torchdiffeq)", "checkpoint offline, 2",
                         "checkpoint online, 2"}
    column = {name: [cell.strip() for cell in line.split("|")] for name, line in rows.items()}
    growth = {name: float(cells[9]) for name, cells in column.items()}
    assert growth["reversible"] == 1.0 and 1.9 < growth["direct_rk"] < 2.1
    recomputed = {name: float(cells[7]) for name, cells in column.items()}  # the schedules' own counts, per step
    assert recomputed["checkpoint online, 2"] == 3.6 and recomputed["checkpoint offline, 2"] == 2.5
    model = {name: cells[10] for name, cells in column.items()}
    assert float(model["reversible"]) > 0 and float(model["checkpoint online, 2"]) > 0 and model["direct_rk"] == "–"
    assert all(float(cells[11]) < 1e-10 for cells in column.values())  # every gradient against backprop
    assert "r* = (F + Rb - B - GV) / B = " in text and "| online, 2 | R/n 1.80 vs r* " in text
    assert "The authors' JAX reversible was not run" in text


def test_authors_jax_runner_agrees_with_ours():
    """Where the authors' JAX reversible can run (their package and jax, here or in FASTGRAD_AUTHORS_PYTHON), the
    bench's subprocess returns their gradient on the paper's field, which equals ours (same scheme, same weights)."""
    import runs.bench.reversible as bench

    python, why = bench.authors_python()
    if python is None:
        pytest.skip(why)
    field = bench.ScalarODE.paper()
    y0 = torch.ones(1, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5], dtype=torch.float64)
    ours = bench.gradient(bench.Reversible(SolverSpec("midpoint", step_size=0.01)), field, y0, ts)
    jax = bench.AuthorsJAX(python, field, 1.0)
    try:
        theirs = torch.tensor(jax.gradient(50)["grad"], dtype=torch.float64)
        assert jax.roundoff(50) < 1e-12
    finally:
        jax.close()
    assert relative_error(ours, theirs) < 1e-12
