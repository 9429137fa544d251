"""A real single-node SLURM (Debian's slurmctld/slurmd/munge, brought up by tests/slurm/cluster.sh) runs a 2-cell
smoke sweep through `hydra/launcher=slurm`; one cell is pre-empted (it sends itself SIGUSR2, the signal SLURM sends
through submitit's --signal), so submitit requeues it on the cluster and it resumes from its checkpoint; a re-launch
submits nothing, both cells being finished.

The module fixture brings the cluster up when it can (root, and the packages installed or installable with
apt-get) and takes it down afterwards, unless it was already up (`make slurm-up`). `make slurm-test` runs only this.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
STATE = Path(os.environ.get("FASTGRAD_SLURM_DIR", "/tmp/fastgrad-slurm"))
DAEMONS = ("slurmctld", "slurmd", "sbatch", "munged")
ON_THE_TEST_NODE = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
                    "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=15"]
TIMES = {"seconds_per_iter", "train_seconds", "eval_seconds", "wall_seconds", "peak_rss_mib", "started_at",
         "finished_at", "run_dir", "graph_mib", "config_fingerprint", "hostname"}


def _cannot() -> str | None:
    installed = all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in DAEMONS)
    if os.geteuid() != 0:
        return "a SLURM cluster on this machine needs root (the daemons run as SlurmUser=root): sudo make slurm-test"
    if not installed and not shutil.which("apt-get"):
        return "slurm-wlm and munge are not installed and there is no apt-get to install them"
    return None


@pytest.fixture(scope="module")
def slurm_conf():
    """The machine's test cluster, shared by every test process using it at the time (pytest-xdist workers, two
    checkouts): bring-up and tear-down hold the lock exclusively, use holds it shared; the last user out takes down
    a cluster that tests brought up, never one started by `make slurm-up`."""
    reason = _cannot()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "FASTGRAD_SLURM_DIR": str(STATE)}
    marker = STATE / "started-by-tests"
    STATE.mkdir(parents=True, exist_ok=True)
    answers = lambda: subprocess.run([CLUSTER, "status"], env=env, capture_output=True).returncode == 0  # noqa: E731
    with open(f"{STATE}.lock", "w") as lock:
        deadline = time.monotonic() + 900
        while True:
            fcntl.flock(lock, fcntl.LOCK_SH)  # waits while another process brings the cluster up or down
            if answers():
                break
            fcntl.flock(lock, fcntl.LOCK_UN)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # someone else is bringing it up (or taking it down): look again
                assert time.monotonic() < deadline, "waited 15 min for the test cluster"
                time.sleep(0.5)
                continue
            if not answers():
                up = subprocess.run([CLUSTER, "up"], env=env, capture_output=True, text=True, timeout=600)
                if up.returncode == 3:
                    pytest.skip(f"could not install slurm-wlm and munge: {up.stderr.strip()[-300:]}")
                assert up.returncode == 0, f"the cluster did not come up:\n{up.stderr}"
                marker.touch()
            fcntl.flock(lock, fcntl.LOCK_SH)
            break
        try:
            yield STATE / "slurm.conf"
        finally:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another test process still uses it; the last one out takes it down
            else:
                if marker.exists():
                    subprocess.run([CLUSTER, "down"], env=env, capture_output=True, timeout=120)
                    marker.unlink(missing_ok=True)


def test_a_two_cell_sweep_runs_on_slurm_and_a_preempted_cell_is_requeued(slurm_conf, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_conf))
    sweep = ["-m", "runs.train", "-m", "scale=smoke", "logger=none", "progress=false", "device=cpu",
             "train.iterations=6", "fault.kind=null,preempt", "fault.step=2", *ON_THE_TEST_NODE,
             f"hydra.sweep.dir={tmp_path}"]
    proc = run_cli(*sweep, timeout=240)
    log = (STATE / "log" / "slurmctld.log").read_text()[-3000:] if (STATE / "log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log
    results = {}
    for path in tmp_path.rglob("result.json"):
        overrides = (path.parent / ".hydra" / "overrides.yaml").read_text()
        results["preempt" if "preempt" in overrides else "plain"] = json.loads(path.read_text())
    assert {k: r["status"] for k, r in results.items()} == {"plain": "ok", "preempt": "ok"}
    script = next(tmp_path.glob(".submitit/*/*_submission.sh")).read_text()
    assert "#SBATCH --array=0-1" in script and "#SBATCH --signal=USR2@120" in script  # a real SLURM job array
    job_logs = "".join(p.read_text() for p in tmp_path.glob(".submitit/*/*_log.out"))
    assert "Requeued job" in job_logs and "resuming from step 3" in job_logs
    same = lambda r: {k: v for k, v in r.items() if k not in TIMES}  # noqa: E731
    assert same(results["preempt"]) == same(results["plain"])

    status = run_cli("-m", "analysis.status", str(tmp_path))
    assert "| 2     | 2  | 0       | 0      | 0          | 0       |" in status.stdout

    jobs = set(tmp_path.glob(".submitit/*"))
    again = run_cli(*sweep, timeout=240)  # both cells ok: nothing is submitted again
    assert again.returncode == 0, again.stderr[-3000:]
    assert "not submitting 2 of 2 cells" in again.stdout + again.stderr
    assert set(tmp_path.glob(".submitit/*")) == jobs


def test_a_job_requeued_by_slurm_resumes_to_the_uninterrupted_numbers(slurm_conf, tmp_path):
    """`scontrol requeue` (what SLURM does to a pre-empted job with PreemptMode=REQUEUE): SLURM sends SIGTERM, the run
    saves a checkpoint after its current step and exits, SLURM starts the job again and it resumes. The two cells
    compute the same thing (checkpoint_every only says when to save); one is requeued mid-run, the other is not."""
    args = ["-m", "runs.train", "-m", "scale=smoke", "logger=none", "progress=false", "device=cpu",
            "train.iterations=100", "train.grad_error=false", "train.checkpoint_every=1000,999", *ON_THE_TEST_NODE,
            f"hydra.sweep.dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SLURM_CONF": str(slurm_conf)}
    sweep = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)

    def cell(every: int) -> Path | None:
        for overrides in tmp_path.glob("*/*/*/.hydra/overrides.yaml"):
            if f"train.checkpoint_every={every}" in overrides.read_text():
                return overrides.parent.parent
        return None

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and sweep.poll() is None:
        target = cell(999)
        if target is not None and (target / "metrics.jsonl").exists() and len(
                (target / "metrics.jsonl").read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert sweep.poll() is None, "the sweep ended before its job could be requeued"
    job = next(p.name for p in tmp_path.glob(".submitit/*_1"))  # array task 1: the checkpoint_every=999 cell
    subprocess.run(["scontrol", "requeue", job], env=env, check=True, capture_output=True, timeout=30)
    output, _ = sweep.communicate(timeout=240)
    assert sweep.returncode == 0, output[-3000:]

    job_log = "".join(p.read_text() for p in tmp_path.glob(f".submitit/{job}/*_log.*"))
    assert "received SIGTERM" in job_log and "resuming from step" in job_log
    resumed, whole = (json.loads((cell(every) / "result.json").read_text()) for every in (999, 1000))
    assert resumed["status"] == whole["status"] == "ok" and resumed["iterations"] == 100
    same = lambda r: {k: v for k, v in r.items() if k not in TIMES}  # noqa: E731
    assert same(resumed) == same(whole)
