"""The reversible paper's tasks, data loader, and `make reproduce-reversible SCALE=smoke` end to end (tables and
figures included)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.reversible import KIND
from tasks.data.physical_systems import SYSTEMS, load_measured, resolve_data_dir
from tasks.data.white_dwarf import white_dwarf_trajectory
from tasks.physical_system import PhysicalSystem

DATA = resolve_data_dir("../shared/data/reversible")


def _write_measured(path: Path, times: np.ndarray, channels: np.ndarray) -> None:
    """A file in the authors' format: a % header, then trial id, time and the state channels per row."""
    rows = [" ".join(f"{v:.16e}" for v in (0.0, t, *c)) for t, c in zip(times, channels)]
    path.write_text("% x1 x2 v1 v2\n" + "\n".join(rows) + "\n")


def test_measured_loader_reads_the_authors_format(tmp_path):
    times = np.linspace(0.5, 4.0, 36)  # shifted to start at 0, as the authors do
    channels = np.stack([np.sin(times), np.cos(times), times, -times], axis=1) * 100
    _write_measured(tmp_path / SYSTEMS["double_linear"][0], times, channels)
    grid, values = load_measured(tmp_path / SYSTEMS["double_linear"][0], 100.0, 3.0, 7)
    assert np.allclose(grid, np.linspace(0, 3, 7))
    assert np.allclose(values[:, 2], grid + 0.5, atol=1e-12)  # linear channel: interpolation is exact
    assert np.allclose(values[:, 0], np.sin(grid + 0.5), atol=2e-2)
    task = PhysicalSystem(0, torch.device("cpu"), torch.float64, data_dir=str(tmp_path), num_points=7,
                          download=False, stand_in=False)
    assert task.dataset.startswith("real_double_linear_h_1.txt (measured")
    assert task.data.shape == (7, 1, 4)


def test_absent_data_falls_back_to_a_named_stand_in_or_fails_clearly(tmp_path):
    task = PhysicalSystem(0, torch.device("cpu"), torch.float64, system="double_pend", data_dir=str(tmp_path),
                          download=False)
    assert "simulated stand-in" in task.dataset and torch.isfinite(task.data).all()
    with pytest.raises(ValueError, match="task.data_dir has no real_double_linear_h_1.txt"):
        PhysicalSystem(0, torch.device("cpu"), torch.float64, data_dir=str(tmp_path), download=False, stand_in=False)


@pytest.mark.skipif(not (DATA / SYSTEMS["double_pend"][0]).exists(),
                    reason="the authors' measured data are not in ../shared/data/reversible (see its README)")
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_real_measured_data_load(system):
    task = PhysicalSystem(0, torch.device("cpu"), torch.float64, system=system, download=False, stand_in=False)
    assert task.data.shape == (500, 1, 4) and torch.isfinite(task.data).all()
    assert 0.05 < task.data.abs().max() < 10  # divided by the authors' scale: order-one values


def test_white_dwarf_data_stay_in_the_equations_domain():
    """(y1^2 - C)^(3/2) needs y1^2 > C = 0.001 over [0, 5]; the solution decays from 1 towards it."""
    y = white_dwarf_trajectory(torch.linspace(0, 5, 101, dtype=torch.float64))
    assert torch.isfinite(y).all() and y[-1, 0] ** 2 > 0.001 and y[-1, 0] < 0.1


def test_make_reproduce_reversible_smoke(smoke_reproduction):
    """Every table at smoke scale through the Makefile (runs, the tables with the authors' logs beside ours, the
    figures), into a temporary output directory."""
    out, _ = smoke_reproduction("reversible")
    results = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    assert len(results) >= 20 and all(r["status"] == "ok" for r in results), [r["error"] for r in results]
    tables = (out / "tables.md").read_text()
    for title in ("gradient error and memory", "CNF on two moons", "cost of one gradient", "convergence order",
                  "white-dwarf", "coupled oscillator", "double pendulum"):
        assert title in tables
    assert KIND in tables and "1.52 ± 0.31" in tables  # an authors' figure (white dwarf, euler, reversible)
    assert "3.922 ± 0.0014" in tables  # the v1 CNF's (their logs name the row "discretise-then-optimise / midpoint")
    for label in ("online (diffrax's)", "offline binomial", "r* (fitted to this column's cells"):
        assert label in tables  # both checkpointing schedules, and the cost model fitted to the complexity table
    checkpointed = [r for r in results if r["method"] == "checkpoint"]
    assert {r["schedule"] for r in checkpointed} == {"online", "offline"}
    for name in ("memory_and_gradient_error.png", "runtime_vs_steps.png", "convergence.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    grad = [r for r in results if r["task"] == "node_regression" and r.get("grad_abs_error_sum") is not None]
    rev = [r["grad_abs_error_sum"] for r in grad if r["method"] == "reversible"]
    otd = [r["grad_abs_error_sum"] for r in grad if r["method"] == "adjoint"]
    assert rev and otd and max(rev) < min(otd)  # the paper's v1 claim: closer to DTO than the continuous adjoint
