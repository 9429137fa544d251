"""Fault injection: every way a run directory can be damaged or a command mistyped ends in one clear line, and where
the run can go on, the same command finishes it with the uninterrupted run's numbers, each step counted once.

Each test performs the fault for real on a tiny run: a checkpoint cut short, a metrics line half written, a second
process on the same directory, result.json files that are not UTF-8 / not an object, a disk that fills up (a small
tmpfs), a read-only output directory, an output path under a file, misspelt keys, SIGKILL, a NaN loss.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, make_config, read_result, run_cli

from analysis import status as status_cli
from analysis import table as table_cli
from record import CHECKPOINT, ERROR_LOG, METRICS, PREVIOUS_CHECKPOINT, RESULT, read_metrics, step_rows
from record.lock import RunLock
from runs.loop import run
from runs.resume import Interrupted

TINY = ["train.iterations=6", "train.checkpoint_every=2", "train.grad_error=false"]
SMOKE = ["scale=smoke", "logger=none", "progress=false", "device=cpu"]
# What may differ between runs of the same computation (clocks, process memory, where it ran), as in test_resume.py
TIMES = {"seconds_per_iter", "train_seconds", "eval_seconds", "wall_seconds", "peak_rss_mib", "started_at",
         "finished_at", "run_dir", "graph_mib", "config_fingerprint"}


def numbers(result) -> dict:
    data = result.as_json() if hasattr(result, "as_json") else result
    return {k: v for k, v in data.items() if k not in TIMES}


def steps(run_dir: Path) -> list[tuple[int, float, int, int]]:
    return [(r["step"], r["loss"], r["fwd_nfe"], r["bwd_nfe"]) for r in step_rows(read_metrics(run_dir))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every resumed one must equal."""
    run_dir = tmp_path_factory.mktemp("reference")
    return numbers(run(make_config(*TINY), run_dir)), steps(run_dir)


def preempted(run_dir: Path):
    """The run stopped by a pre-emption signal after step 4 (checkpoints at steps 2 and 4), as SLURM leaves it."""
    with pytest.raises(Interrupted):
        run(make_config(*TINY, "fault.kind=preempt", "fault.step=3"), run_dir)
    assert not (run_dir / RESULT).exists() and (run_dir / PREVIOUS_CHECKPOINT).exists()


def resumed(run_dir: Path):
    return run(make_config(*TINY, "fault.kind=preempt", "fault.step=3"), run_dir)  # the same command again


@pytest.mark.parametrize("size", [10_000, 0])
def test_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, reference, caplog, size):
    preempted(tmp_path)
    path = tmp_path / CHECKPOINT
    with open(path, "r+b") as f:
        f.truncate(min(size, path.stat().st_size // 2))
    with caplog.at_level(logging.INFO):
        result = resumed(tmp_path)
    said = [r.getMessage() for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert len(said) == 1 and str(path) in said[0] and "trying checkpoint.previous.pt" in said[0], said
    assert "resuming from step 4" in caplog.text  # the stop signal saved again after step 4's checkpoint
    assert result.status == "ok" and numbers(result) == reference[0]
    assert steps(tmp_path) == reference[1]  # each step once


def test_with_both_checkpoints_unreadable_the_run_starts_afresh(tmp_path, reference, caplog):
    preempted(tmp_path)
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        preempted(tmp_path)  # from step 0 again, so the command's own pre-emption at step 3 comes again
    assert "checkpoint.previous.pt cannot be loaded (EOFError: Ran out of input); starting afresh" in caplog.text
    result = resumed(tmp_path)
    assert numbers(result) == reference[0] and steps(tmp_path) == reference[1]


def test_a_half_written_metrics_line_is_dropped_and_said(tmp_path, reference, caplog):
    preempted(tmp_path)
    with open(tmp_path / METRICS, "a") as f:
        f.write('{"step": 4, "loss": 0.12')  # a kill during a write
    assert len(step_rows(read_metrics(tmp_path))) == 4  # readers skip it meanwhile
    with caplog.at_level(logging.WARNING):
        result = resumed(tmp_path)
    assert "dropped 1 unfinished line(s)" in caplog.text
    assert numbers(result) == reference[0] and steps(tmp_path) == reference[1]


def test_a_second_process_on_the_same_run_exits_at_once_naming_the_holder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir):  # this test process is "the first process"
        start = time.monotonic()
        second = run_cli("-m", "runs.train", *SMOKE, *TINY, f"hydra.run.dir={run_dir}")
        assert time.monotonic() - start < 60
        assert second.returncode == 75
        assert second.stderr.strip().splitlines() == [
            f"runs.train: {run_dir} is in use by another process (PID {os.getpid()}); wait for it to finish, or "
            "stop it, then run the same command again"]
        assert not (run_dir / METRICS).exists() and not (run_dir / RESULT).exists()  # it wrote nothing
        status_cli.main([str(tmp_path)])
        assert f"PID {os.getpid()}" in capsys.readouterr().out
    assert run_cli("-m", "runs.train", *SMOKE, *TINY, f"hydra.run.dir={run_dir}").returncode == 0  # once free


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"null", b"[1, 2]"], ids=["non-utf8", "null", "list"])
def test_an_unreadable_result_is_reported_and_run_again(tmp_path, reference, capsys, caplog, content):
    run_dir = tmp_path / "sweep" / "cell"
    run(make_config(*TINY), run_dir)
    (run_dir / RESULT).write_bytes(content)
    assert status_cli.main([str(tmp_path / "sweep")]) is None
    out = capsys.readouterr().out
    assert "unreadable" in out and str(run_dir / RESULT) in out
    assert table_cli.main([str(tmp_path / "sweep")]) == 0
    assert "unreadable x1" in capsys.readouterr().out
    with caplog.at_level(logging.WARNING):
        again = run(make_config(*TINY), run_dir)  # skip-done does not trust it: the cell runs again
    assert f"{run_dir / RESULT}: " in caplog.text and "running again" in caplog.text
    assert again.status == "ok" and numbers(again) == reference[0]


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a real full or read-only file system)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(name: str, options: str) -> Path:
        path = tmp_path / name
        _mount_tmpfs(path, options)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_at_a_checkpoint_ends_in_one_line_and_the_run_finishes_later(tmpfs):
    # a model whose checkpoint (about 2.4 MB with Adam's state) does not fit, while config, metrics and result do
    args = ["-m", "runs.train", *SMOKE, *TINY, "task.hidden=256"]
    disk = tmpfs("disk", "size=600k")
    full = run_cli(*args, f"out_dir={disk}")
    assert full.returncode == 1
    lines = full.stderr.strip().splitlines()
    assert len(lines) <= 2 and "Traceback" not in full.stderr, full.stderr
    run_dir = next(disk.rglob(".hydra")).parent
    assert f"cannot write {run_dir / CHECKPOINT}: No space left on device" in lines[-1]
    result = read_result(run_dir)
    assert result["status"] == "failed" and "[Errno 28]" in result["error"]
    assert not list(run_dir.glob(".*.tmp"))  # no temp file left to fill the disk
    subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
    again = run_cli(*args, f"out_dir={disk}")
    assert again.returncode == 0, again.stderr
    assert read_result(run_dir)["status"] == "ok" and not (run_dir / ERROR_LOG).exists()  # no stale error.txt


def test_a_read_only_output_directory_ends_in_one_line(tmpfs):
    read_only = tmpfs("ro", "ro,size=64k")
    done = run_cli("-m", "runs.train", *SMOKE, *TINY, f"out_dir={read_only}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"runs.train: cannot write {read_only / 'cnf_toy'}: "
                                                "[Errno 30] Read-only file system"]


def test_an_output_path_under_a_file_ends_in_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    done = run_cli("-m", "runs.train", *SMOKE, *TINY, f"out_dir={tmp_path / 'a_file' / 'runs'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "[Errno 20] Not a directory" in lines[0] and str(tmp_path / "a_file") in lines[0]


@pytest.mark.parametrize("override, said", [
    ("+solverr.rtol=1e-3", "solverr is not a setting (did you mean solver?)"),
    ("+train.iteratons=5", "train.iteratons is not a setting (did you mean train.iterations?)"),
    ("+task.hiden=8", "task.hiden is not a setting of CNFToy (did you mean task.hidden?)"),
    ("seed=abc", "seed must be an integer, got 'abc'"),
])
def test_a_misspelt_key_or_a_wrong_value_is_named(tmp_path, override, said):
    result = run(make_config(*TINY, override), tmp_path)
    assert result.status == "failed" and said in result.error and result.iterations is None


def test_a_misspelt_key_on_the_command_line_is_one_line(tmp_path):
    done = run_cli("-m", "runs.train", *SMOKE, "+train.iteratons=5", f"out_dir={tmp_path}")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "did you mean train.iterations?" in done.stderr


def test_sigkill_mid_run_then_the_same_command_resumes_to_the_same_numbers(tmp_path):
    args = [sys.executable, "-m", "runs.train", *SMOKE, *TINY[:-1], "train.iterations=40", "train.grad_error=false",
            f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(steps(tmp_path)) < 5:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    killed_at = len(steps(tmp_path))
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    whole = tmp_path.parent / "whole"
    subprocess.run([*args[:-1], f"hydra.run.dir={whole}"], cwd=ROOT, env=env, check=True, capture_output=True)
    assert numbers(read_result(tmp_path)) == numbers(read_result(whole))
    assert steps(tmp_path) == steps(whole) and killed_at >= 5  # resumed from its last checkpoint, each step once


def test_a_nan_loss_is_recorded_as_diverged(tmp_path):
    result = run(make_config(*TINY, "fault.kind=nan_loss", "fault.step=1"), tmp_path)
    assert result.status == "diverged" and result.failed_step == 1
