"""Shared fixtures: compose configs exactly as `python -m runs.train` would, run them in-process or as the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)


def make_config(*overrides: str) -> DictConfig:
    """The config of `python -m runs.train <overrides>` (smoke scale and no W&B unless overridden)."""
    defaults = ["scale=smoke", "logger=none", "progress=false", "device=cpu"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=defaults + list(overrides))


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def smoke_reproduction(tmp_path_factory):
    """`make reproduce-<paper> SCALE=smoke` into a temporary folder, run once per paper and test session: a function
    of the paper giving (output folder, the finished make process). The sweeps are the slowest part of the suite, so
    every test of a paper's smoke outputs shares one run, across pytest-xdist's workers too: they share the session's
    temporary folder, and a file lock there lets the first worker that needs a paper run it while another waits and
    reuses it (pytest-xdist's --dist loadgroup would keep such tests together, but it does nothing under pytest 9)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def reproduce(paper: str) -> tuple[Path, subprocess.CompletedProcess]:
        out, saved = shared / f"reproduce-{paper}" / "smoke", shared / f"reproduce-{paper}.json"
        command = ["make", "--no-print-directory", f"reproduce-{paper}", "SCALE=smoke", f"OUT={out}",
                   f"PY={sys.executable}", "ARGS=device=cpu"]
        with open(shared / f"reproduce-{paper}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed process exits
            if not saved.exists():
                env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
                proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
                saved.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                             "stderr": proc.stderr}))
            record = json.loads(saved.read_text())
        proc = subprocess.CompletedProcess(command, record["returncode"], record["stdout"], record["stderr"])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return out, proc

    return reproduce


def read_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


@pytest.fixture
def config():
    return make_config


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the RNG state a run starts from (seed 0): `runs.loop.run` seeds torch, numpy and random
    right before it builds the task, and task constructors do not seed, so a test that builds a task directly gets
    the initial parameters a run with seed 0 gets, whatever ran before it in this process."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
