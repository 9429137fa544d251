"""`make reproduce-gq SCALE=smoke` end to end: every experiment file sweeps, analysis.gq prints every table, the
notebook writes every figure. One run of the target serves all the checks (it is the slowest test of the GQ paper)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runs.reproduce import commands, experiments

EXPECTED = {"g1d", "images", "nested_spheres", "ou_ncosines", "ou_sde", "sines10", "sines50", "toy_gradient"}


@pytest.fixture(scope="module")
def smoke_runs(smoke_reproduction):
    out, proc = smoke_reproduction("gq")
    return out, proc.stdout


def test_every_experiment_ran_ok(smoke_runs):
    root, _ = smoke_runs
    assert set(experiments("gq")) == EXPECTED
    results = [json.loads(p.read_text()) for p in root.rglob("result.json")]
    assert {p.parts[len(root.parts)] for p in root.rglob("result.json")} == EXPECTED
    failed = [(r["run_dir"], r["error"]) for r in results if r["status"] != "ok"]
    assert not failed, failed
    ou = [r for r in results if r["task"] == "ou_sde" and r["method"] == "gq"]
    assert ou and all("ode_test_kl" in r and "test_kl" in r for r in ou)


def test_analysis_prints_each_table_with_published_cells(smoke_runs):
    root, stdout = smoke_runs
    for heading in ("nested spheres: training time", "nested spheres: test accuracy", "sines, 10 regular times",
                    "sines, 50 regular times", "images (scikit-learn 8x8 digits", "Ornstein–Uhlenbeck: test KL",
                    "Wong–Zakai ablation", "toy gradient", "g1d: MSE"):
        assert heading in stdout, heading
    assert "pub. n/f" in stdout
    for label in ("| Direct", "| Adjoint", "| Seminorm", "| GQ", "SDE Adjoint", "SDE Direct", "GQ (Wong–Zakai)"):
        assert label in stdout, label
    assert (root / "gq_tables.md").read_text().count("####") >= 20


def test_notebook_writes_every_figure(smoke_runs):
    root, _ = smoke_runs
    names = {p.name for p in (root / "figures").glob("*.png")}
    for name in ("nested_spheres_times.png", "sines10_times.png", "ou_sde_times.png", "images_times.png",
                 "nested_spheres_loss_clock.png", "toy_gradient.png"):
        assert name in names


def test_scales_differ_and_launcher_passes_through():
    smoke = commands("gq", "nested_spheres", "smoke", Path("out"), [])
    paper = commands("gq", "nested_spheres", "paper", Path("out") / "paper", ["logger=none", "hydra/launcher=slurm"])
    assert any("task.width=8,16" in line for line in smoke[0])
    assert "task.width=5,20,100,500" in paper[0]
    assert "task.width=1000,1500,2000,2500,3000" in paper[2] and "train.lr=0.0001" in paper[2]
    assert paper[0][-2:] == ["logger=none", "hydra/launcher=slurm"]
    assert f"hydra.sweep.dir={Path('out') / 'paper' / 'nested_spheres'}" in paper[0]


def test_g1d_notebook_table_uses_the_repo_notebook_numbers_labelled_as_such():
    from analysis.gq import reference_rows

    ref = reference_rows("g1d")
    assert set(ref["row"]) == {"Direct", "Adjoint", "GQ"}
    assert (ref["table"].str.contains("not in paper")).all()
