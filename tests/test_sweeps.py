"""Sweeps as a user re-launches them: a failing cell never stops the others, `analysis.status` shows each cell's
state and error, and a re-launch redoes only what is not ok (failed, interrupted, missing)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

from conftest import run_cli

from analysis.status import collect, render
from record import RunDir, RunResult

SMOKE = ["scale=smoke", "logger=none", "progress=false", "device=cpu", "train.iterations=3", "train.grad_error=false"]
# Fields that may differ between an interrupted-then-resumed run and an uninterrupted one (see tests/test_resume.py),
# plus the config fingerprint, which differs between cells by their fault.kind.
TIMES = {"seconds_per_iter", "train_seconds", "eval_seconds", "wall_seconds", "peak_rss_mib", "started_at",
         "finished_at", "run_dir", "graph_mib", "config_fingerprint"}


def _cells(sweep: Path) -> dict[str, Path]:
    """fault.kind of each cell -> its run directory."""
    cells = {}
    for hydra_dir in sweep.rglob(".hydra"):
        overrides = (hydra_dir / "overrides.yaml").read_text()
        kind = next(line.split("=", 1)[1] for line in overrides.splitlines() if "fault.kind=" in line)
        cells[kind] = hydra_dir.parent
    return cells


def _stamp(run_dir: Path) -> int | None:
    path = run_dir / "result.json"
    return path.stat().st_mtime_ns if path.exists() else None


def test_a_failing_cell_is_isolated_reported_and_alone_rerun(tmp_path):
    sweep = ["-m", "runs.train", "-m", *SMOKE, "fault.kind=null,nan_loss,oom", "fault.step=1",
             f"hydra.sweep.dir={tmp_path}"]
    first = run_cli(*sweep)
    assert first.returncode == 0, first.stderr
    cells = _cells(tmp_path)
    status = {k: json.loads((d / "result.json").read_text()) for k, d in cells.items()}
    assert {k: r["status"] for k, r in status.items()} == {"null": "ok", "nan_loss": "diverged", "oom": "oom"}
    assert status["null"]["iterations"] == 3  # the cells after it... and before it, ran to the end

    report = run_cli("-m", "analysis.status", str(tmp_path))
    assert report.returncode == 0, report.stderr
    assert "| 3     | 1  | 0       | 2      | 0          | 0       |" in report.stdout
    assert "diverged: Diverged: loss is nan at step 1" in report.stdout
    assert "oom: OutOfMemoryError: simulated out of memory at step 1" in report.stdout

    # Interrupted / never-run cells: the ok cell's result is lost (reads as running), the oom cell's directory is gone
    # (reads as missing).
    (cells["null"] / "result.json").unlink()
    shutil.rmtree(cells["oom"])
    states = {c.key: c.state for c in collect(tmp_path)[tmp_path]}
    assert sorted(states.values()) == ["failed", "missing", "running"]
    assert "step 3/3" in render(collect(tmp_path), tmp_path)

    before = {k: _stamp(d) for k, d in cells.items()}
    second = run_cli(*sweep)
    assert second.returncode == 0, second.stderr
    after = {k: _stamp(d) for k, d in _cells(tmp_path).items()}
    assert set(after) == {"null", "nan_loss", "oom"} and all(after.values())
    assert after["nan_loss"] != before["nan_loss"]  # failed: run again (and fails again, deterministically)
    assert (cells["nan_loss"] / "result.previous.json").exists()
    # the cell whose result was lost resumed from its final checkpoint
    assert "resuming from step 3" in second.stdout + second.stderr
    rows = [json.loads(line) for line in (cells["null"] / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "split" in row] == [2]  # its final evaluation is not redone
    before = after

    third = run_cli(*sweep)  # nothing ok is redone
    assert third.returncode == 0, third.stderr
    after = {k: _stamp(d) for k, d in _cells(tmp_path).items()}
    assert after["null"] == before["null"]
    assert after["nan_loss"] != before["nan_loss"] and after["oom"] != before["oom"]
    assert (third.stdout + third.stderr).count("already finished") == 1


def test_status_expects_the_cells_of_every_launch(tmp_path):
    """Two launches into one sweep directory (as `make demo` does): cells of both are expected."""
    lines = [{"overrides": ["scale=smoke", "seed=0,1", "progress=false"], "params": {}, "excluded": ["progress"]},
             {"overrides": ["scale=smoke", "seed=2"], "params": {"method": "direct,adjoint"}, "excluded": ["progress"]}]
    (tmp_path / "sweeps.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    def cell(name: str, overrides: list[str], **result) -> Path:
        run_dir = tmp_path / name
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        (run_dir / ".hydra" / "config.yaml").write_text("train:\n  iterations: 10\n")
        if result:
            RunDir(run_dir).write_result(RunResult.from_json(result))
        return run_dir

    cell("a", ["scale=smoke", "seed=0", "progress=False"], status="ok")
    running = cell("b", ["scale=smoke", "seed=1", "progress=True"])
    (running / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n')
    cell("c", ["method=direct", "scale=smoke", "seed=2"], status="solver_failed", error="max_num_steps exceeded")
    cells = {" ".join(c.key): c for c in collect(tmp_path)[tmp_path]}
    assert list(collect(tmp_path)) == [tmp_path]
    assert {k: c.state for k, c in cells.items()} == {
        "scale=smoke seed=0": "ok", "scale=smoke seed=1": "running", "method=direct scale=smoke seed=2": "failed",
        "method=adjoint scale=smoke seed=2": "missing"}
    assert cells["scale=smoke seed=1"].detail.startswith("step 2/10, last write")
    text = render(collect(tmp_path), tmp_path)
    assert "solver_failed: max_num_steps exceeded" in text and "method=adjoint seed=2" in text


def test_submitit_requeues_a_preempted_cell_and_a_relaunch_resubmits_only_unfinished_cells(tmp_path):
    """On submitit's local executor (the code path of hydra/launcher=slurm without a cluster; tests/test_slurm.py runs
    the SLURM one): fault.kind=preempt makes a cell send itself SIGUSR2, as SLURM does before pre-emption or the time
    limit; submitit requeues it and it resumes to the uninterrupted cell's numbers. A re-launch (through
    hydra_plugins.fastgrad_nde_launchers) submits only the failed cell."""
    sweep = ["-m", "runs.train", "-m", *SMOKE, "train.iterations=8", "fault.kind=null,preempt,error", "fault.step=3",
             f"hydra.sweep.dir={tmp_path}", "hydra/launcher=submitit_local",
             "hydra.launcher._target_=hydra_plugins.fastgrad_nde_launchers.LocalSkipFinished"]
    first = run_cli(*sweep)
    assert first.returncode == 0, first.stderr
    results = {k: json.loads((d / "result.json").read_text()) for k, d in _cells(tmp_path).items()}
    assert {k: r["status"] for k, r in results.items()} == {"null": "ok", "preempt": "ok", "error": "failed"}
    same = lambda r: {k: v for k, v in r.items() if k not in TIMES}  # noqa: E731
    assert same(results["preempt"]) == same(results["null"])
    logs = "".join(p.read_text() for p in tmp_path.glob(".submitit/*/*_log.*"))
    assert "Caught signal SIGUSR2" in logs and "Requeued job" in logs and "resuming from step 4" in logs

    jobs = set(tmp_path.glob(".submitit/*/*_submitted.pkl"))
    again = run_cli(*sweep)
    assert again.returncode == 0, again.stderr
    assert "not submitting 2 of 3 cells" in again.stdout + again.stderr
    new_jobs = set(tmp_path.glob(".submitit/*/*_submitted.pkl")) - jobs
    assert len(new_jobs) == 1  # only the failed cell went back to the executor
    assert "fault.kind=error" in str(pickle.loads(next(iter(new_jobs)).read_bytes()).args)
