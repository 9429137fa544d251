"""The run directory: the source of truth for one run (see DESIGN.md, "The run directory").

  .hydra/config.yaml  Hydra's own copy of the resolved config
  metrics.jsonl       one JSON line per training step and per evaluation
  result.json         written once at the end, atomically (temp file + os.replace): never half-written
  checkpoint.pt       the latest training state, written atomically, so an interrupted run resumes
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

RESULT = "result.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
STATUSES = ("ok", "diverged", "solver_failed", "oom", "failed")


def _json_safe(value: Any) -> Any:
    """NaN and inf become strings, so the file stays valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _atomic_write(path: Path, write) -> None:
    """Write to a temp file beside `path`, then rename over it: a killed process leaves the old file or the new
    one, never half of one. (No fsync: pre-emption kills processes, not machines, and fsync costs milliseconds.)"""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunRecord:
    """Reads and writes one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics = None

    # result.json
    def read_result(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / RESULT).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def retire_result(self) -> None:
        """Move a finished attempt's result.json aside (result.previous.json) before the run is tried again, so the
        directory reads as running, not failed, while the new attempt runs."""
        path = self.path / RESULT
        if path.exists():
            os.replace(path, self.path / "result.previous.json")

    def write_result(self, result: dict[str, Any]) -> None:
        assert result.get("status") in STATUSES, result.get("status")
        text = json.dumps(_json_safe(result), indent=2, sort_keys=True) + "\n"
        _atomic_write(self.path / RESULT, lambda f: f.write(text.encode()))

    # metrics.jsonl
    def append_metrics(self, row: dict[str, Any]) -> None:
        if self._metrics is None:
            self._metrics = open(self.path / METRICS, "a", buffering=1)
        self._metrics.write(json.dumps(_json_safe(row)) + "\n")

    def truncate_metrics(self, before_step: int) -> None:
        """Drop metric lines from steps a resumed run will redo."""
        path = self.path / METRICS
        if not path.exists():
            return
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] < before_step]
        _atomic_write(path, lambda f: f.write("".join(line + "\n" for line in keep).encode()))

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    # checkpoint.pt
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        _atomic_write(self.path / CHECKPOINT, lambda f: torch.save(state, f))

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)


@functools.cache
def git_commit() -> str | None:
    """The harness's commit (with '+dirty' when the work tree differs from it)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


@functools.cache
def library_versions() -> dict[str, str | None]:
    names = ["torch", "torchdiffeq", "torchsde", "torchcde", "hydra-core", "wandb", "numpy"]
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "device": str(device),
        "device_name": name,
        "hostname": socket.gethostname(),
        "versions": library_versions(),
        "git_commit": git_commit(),
    }
