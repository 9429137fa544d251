"""The entry point as a user runs it: the run directory, statuses, clear errors, sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_config, read_result, run_cli

from record import RunDir, RunResult
from runs.loop import run

SMOKE = ["scale=smoke", "logger=none", "progress=false"]


def _single(tmp_path: Path, *overrides: str):
    proc = run_cli("-m", "runs.train", *SMOKE, f"out_dir={tmp_path}", *overrides)
    results = list(tmp_path.rglob("result.json"))
    return proc, (json.loads(results[0].read_text()) if results else None), (results[0].parent if results else None)


def test_adjoint_seminorm_and_direct_runs_record_their_nfe(tmp_path):
    proc, adjoint, run_dir = _single(tmp_path / "a", "task=cnf_toy", "method=adjoint", "norm=seminorm")
    assert proc.returncode == 0, proc.stderr
    assert adjoint["status"] == "ok"
    assert adjoint["fwd_nfe"] > 0 and adjoint["bwd_nfe"] > 0
    assert adjoint["norm"] == "seminorm" and adjoint["dataset"].startswith("ffjord_toy")
    for key in ("task", "method", "solver", "rtol", "atol", "adjoint_rtol", "adjoint_atol", "dtype", "seed", "scale",
                "test_nll", "seconds_per_iter", "train_seconds", "graph_mib", "peak_rss_mib", "versions",
                "git_commit", "device", "fwd_steps", "bwd_steps", "fwd_rejected", "bwd_rejected", "grad_rel_error"):
        assert key in adjoint, key
    assert adjoint["grad_rel_error"] < 1e-2
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "checkpoint.pt").exists()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in lines if "loss" in row] == list(range(adjoint["iterations"]))

    proc, direct, _ = _single(tmp_path / "d", "task=cnf_toy", "method=direct")
    assert proc.returncode == 0, proc.stderr
    assert direct["bwd_nfe"] == 0
    assert direct["fwd_nfe"] == adjoint["fwd_nfe"]  # same forward solver and tolerances


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["task=nope"], "Available options in 'task'"),
        (["norm=seminorm", "method=direct"], "norm=seminorm steers the step size of a backward solve"),
        (["solver.rtol=-1"], "solver.rtol must be a number in (0, 1)"),
        (["solver=rk4", "norm=seminorm"], "solver=rk4 takes fixed steps"),
        (["task.hidden=abc"], "task.hidden must be int, got 'abc'"),
        (["+task.widht=3"], "task.widht is not a setting of CNFToy"),
    ],
)
def test_bad_config_fails_with_one_clear_message(tmp_path, overrides, expected):
    proc, _, _ = _single(tmp_path, *overrides)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_nan_loss_is_recorded_as_diverged(tmp_path):
    proc, result, run_dir = _single(tmp_path, "fault.kind=nan_loss", "fault.step=2")
    assert proc.returncode == 1
    assert result["status"] == "diverged" and result["failed_step"] == 2
    assert "diverged" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert result["iterations"] == 2  # two steps done before the NaN


@pytest.mark.parametrize(("kind", "status"), [("oom", "oom"), ("error", "failed")])
def test_failures_are_results(tmp_path, kind, status):
    result = run(make_config(f"fault.kind={kind}", "fault.step=1"), tmp_path)
    assert result["status"] == status and "simulated" in result["error"]
    assert read_result(tmp_path)["status"] == status
    assert (tmp_path / "error.txt").read_text().startswith("Traceback")


def test_solver_failure_is_a_result(tmp_path):
    result = run(make_config("solver.max_num_steps=1"), tmp_path)
    assert result["status"] == "solver_failed"
    assert "max_num_steps" in result["error"]


def test_a_finished_run_is_not_redone(tmp_path):
    first = run(make_config(), tmp_path)
    mtime = (tmp_path / "result.json").stat().st_mtime_ns
    second = run(make_config(), tmp_path)
    assert second == first and (tmp_path / "result.json").stat().st_mtime_ns == mtime
    third = run(make_config("rerun=true"), tmp_path)
    assert third["status"] == "ok" and third["started_at"] >= first["started_at"]
    assert (tmp_path / "result.json").stat().st_mtime_ns != mtime


def test_result_json_is_never_half_written(tmp_path, monkeypatch):
    record = RunDir(tmp_path)
    record.write_result(RunResult.from_json({"status": "ok", "value": 1}))

    def interrupted(src, dst):  # the process dies between writing the temp file and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr("record.files.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record.write_result(RunResult.from_json({"status": "failed", "value": 2}))
    assert (read_result(tmp_path)["status"], read_result(tmp_path)["value"]) == ("ok", 1)
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left behind


def test_multirun_records_every_cell_and_goes_on(tmp_path):
    proc = run_cli("-m", "runs.train", "-m", *SMOKE, "method=direct,adjoint", "norm=default,seminorm",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    results = {(r["method"], r["norm"]): r for r in map(json.loads, map(Path.read_text, tmp_path.rglob("result.json")))}
    assert set(results) == {("direct", "default"), ("direct", "seminorm"), ("adjoint", "default"),
                            ("adjoint", "seminorm")}
    assert results[("direct", "seminorm")]["status"] == "failed"
    assert "invalid config" in results[("direct", "seminorm")]["error"]
    assert all(r["status"] == "ok" for key, r in results.items() if key != ("direct", "seminorm"))
    table = run_cli("-m", "analysis.table", str(tmp_path))
    assert table.returncode == 0
    assert "failed x1: invalid config" in table.stdout


def test_run_directory_is_a_function_of_the_overrides(tmp_path):
    args = ("-m", "runs.train", *SMOKE, f"out_dir={tmp_path}", "seed=3", "train.iterations=2")
    first = run_cli(*args)
    second = run_cli(*args)
    assert first.returncode == 0 and second.returncode == 0
    dirs = list(tmp_path.rglob("result.json"))
    assert len(dirs) == 1 and "s3" in str(dirs[0])
    assert "already finished" in second.stderr + second.stdout


def test_wandb_mirror_is_offline_and_keyed_by_the_run_directory(tmp_path):
    result = run(make_config("logger=wandb"), tmp_path)
    assert result["status"] == "ok"
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    assert offline[0].name.endswith(
        __import__("hashlib").sha1(str(tmp_path.resolve()).encode()).hexdigest()[:16]
    )
