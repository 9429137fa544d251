"""Runs that survive interruption: SIGTERM mid-run then the same command again gives the uninterrupted run's numbers;
submitit's pre-emption signal checkpoints and requeues; a changed config never reuses a stale checkpoint or result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, make_config, read_result, run_cli

from runs.loop import run

SMOKE = ["scale=smoke", "logger=none", "progress=false", "device=cpu"]
# Long enough to be caught mid-run; eval_every puts a held-out evaluation on each side of the interruption.
LONG = ["train.iterations=40", "train.eval_every=15", "train.checkpoint_every=1000"]
# What may differ between an interrupted-then-resumed run and an uninterrupted one: wall-clock times, the
# process's memory (a resumed run is a second process), and where/when it ran. Also graph_mib: the first iteration's
# saved-tensor bytes, counted per storage address, so allocator address reuse moves it by ~0.2% between processes
# (seen between two uninterrupted processes too); it is compared to 1%. Everything else must be equal.
TIMES = {"seconds_per_iter", "train_seconds", "eval_seconds", "wall_seconds", "peak_rss_mib", "started_at",
         "finished_at", "run_dir", "graph_mib"}


def _training_steps(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [row for row in map(json.loads, path.read_text().splitlines()) if "loss" in row]


def _run_dir(root: Path) -> Path:
    dirs = [p.parent for p in root.rglob(".hydra")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _without_times(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMES}


def _without_times_rows(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("step_seconds", "elapsed")} for row in rows]


def test_sigterm_mid_run_then_the_same_command_resumes_to_the_same_numbers(tmp_path):
    args = ["-m", "runs.train", *SMOKE, *LONG]
    whole = run_cli(*args, f"out_dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    reference = read_result(_run_dir(tmp_path / "whole"))

    out = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, *args, f"out_dir={out}"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        dirs = [p.parent for p in out.rglob(".hydra")] if out.exists() else []
        if dirs and len(_training_steps(dirs[0])) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    run_dir = _run_dir(out)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM after step" in stderr and "re-run the same command to resume" in stderr
    assert not (run_dir / "result.json").exists()
    stopped_at = torch.load(run_dir / "checkpoint.pt", weights_only=False)["progress"]["step"]
    assert 5 <= stopped_at < 40

    again = run_cli(*args, f"out_dir={out}")
    assert again.returncode == 0, again.stderr
    assert f"resuming from step {stopped_at}" in again.stderr + again.stdout
    assert _run_dir(out) == run_dir  # the same directory, found again
    resumed = read_result(run_dir)
    assert resumed["status"] == "ok" and resumed["iterations"] == 40
    assert _without_times(resumed) == _without_times(reference)
    assert resumed["graph_mib"] == pytest.approx(reference["graph_mib"], rel=0.01)
    # every step recorded exactly once, with the uninterrupted run's losses and NFE
    assert _without_times_rows(_training_steps(run_dir)) == _without_times_rows(
        _training_steps(_run_dir(tmp_path / "whole")))


def test_a_checkpoint_from_another_config_is_not_resumed(tmp_path):
    run(make_config("train.iterations=4", "train.checkpoint_every=2", "fault.kind=error", "fault.step=3"), tmp_path)
    assert read_result(tmp_path)["status"] == "failed"
    result = run(make_config("train.iterations=4", "train.checkpoint_every=2", "train.lr=0.01"), tmp_path)
    assert result["status"] == "ok"
    reference = run(make_config("train.iterations=4", "train.lr=0.01"), tmp_path / "fresh")
    assert result["final_loss"] == reference["final_loss"]
    assert (tmp_path / "result.previous.json").exists()  # the failed attempt is kept beside the new one


def test_a_finished_result_from_another_config_is_redone(tmp_path):
    first = run(make_config("train.iterations=3"), tmp_path)
    again = run(make_config("train.iterations=3"), tmp_path)
    assert again == first  # same config: skipped
    changed = run(make_config("train.iterations=3", "train.lr=0.02"), tmp_path)
    assert changed["config_fingerprint"] != first["config_fingerprint"]
    assert changed["final_loss"] != first["final_loss"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_stop_signals_checkpoint_at_the_next_step_boundary(tmp_path, monkeypatch, signum):
    from runs.loop import Trainer
    from runs.resume import Interrupted

    original = Trainer.train_step

    def step_then_signal(self, step):
        row = original(self, step)
        if step == 1:
            os.kill(os.getpid(), signum)
        return row

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stop:
        run(make_config("train.iterations=5", "train.checkpoint_every=0"), tmp_path)
    assert stop.value.step == 2 and stop.value.exit_code == 128 + signum
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["progress"]["step"] == 2
    assert signal.getsignal(signum) == before  # the handler that was there before is back
    monkeypatch.undo()
    assert run(make_config("train.iterations=5", "train.checkpoint_every=0"), tmp_path)["status"] == "ok"


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path):
    """Offline W&B: each process writes its own offline-run-<time>-<id> directory; the id is derived from the run
    directory, so the resumed attempt carries the same id and `wandb sync` appends it to the same W&B run."""
    args = ["-m", "runs.train", "scale=smoke", "progress=false", "device=cpu", "logger=wandb", "train.iterations=5",
            "train.grad_error=false",
            "fault.kind=preempt", "fault.step=2", f"out_dir={tmp_path}"]
    first = run_cli(*args)
    assert first.returncode == 128 + signal.SIGUSR2, first.stderr  # a plain process: checkpoint, one line, exit
    assert "interrupted by SIGUSR2 after step 3" in first.stderr
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    run_dir = _run_dir(tmp_path)
    assert read_result(run_dir)["status"] == "ok"
    run_id = __import__("hashlib").sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
    attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(a.name.endswith(f"-{run_id}") for a in attempts)
    assert all((a / f"run-{run_id}.wandb").stat().st_size > 0 for a in attempts)
    assert f"finishing run fastgrad-nde/{run_id}" in (attempts[1] / "logs" / "debug.log").read_text()


def test_a_second_stop_signal_stops_at_once(tmp_path):
    """A step that never ends (a stuck solver) must not make the process unkillable: the second SIGTERM kills it."""
    code = ("import os, signal, time\nfrom runs.resume import StopSignals\nwith StopSignals() as stop:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(0.2)\n    print('still here', flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(5)\n    print('not reached')\n")
    proc = run_cli("-c", code)
    assert proc.returncode == -signal.SIGTERM
    assert "still here" in proc.stdout and "not reached" not in proc.stdout
