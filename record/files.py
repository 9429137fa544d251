"""The files of a run directory: their names, and the writers (atomic where a half-written file would mislead)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from record.result import EvalRow, RunResult, Status, StepRow

RESULT = "result.json"
PREVIOUS_RESULT = "result.previous.json"  # a failed attempt's result, kept beside the next attempt
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
ERROR_LOG = "error.txt"
HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
# in a sweep directory
SWEEPS = "sweeps.jsonl"  # every launch's overrides (record.sweeps)
MULTIRUN = "multirun.yaml"  # Hydra's own, overwritten by each launch


def json_safe(value: Any) -> Any:
    """NaN and inf become strings, so the file stays valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
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


class RunDir:
    """Writes one run directory (runs uses it; readers use `record.read`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics: IO[str] | None = None

    # result.json
    def retire_result(self) -> None:
        """Move a finished attempt's result.json aside (result.previous.json) before the run is tried again, so the
        directory reads as running, not failed, while the new attempt runs."""
        path = self.path / RESULT
        if path.exists():
            os.replace(path, self.path / PREVIOUS_RESULT)

    def write_result(self, result: RunResult) -> None:
        Status(result.status)  # a ValueError for a status that is not one
        text = json.dumps(json_safe(result.as_json()), indent=2, sort_keys=True) + "\n"
        atomic_write(self.path / RESULT, lambda f: f.write(text.encode()))

    def write_error(self, text: str) -> None:
        (self.path / ERROR_LOG).write_text(text)

    # metrics.jsonl
    def append_metrics(self, row: StepRow | EvalRow) -> None:
        data = row.as_json() if isinstance(row, EvalRow) else vars(row)
        if self._metrics is None:
            self._metrics = open(self.path / METRICS, "a", buffering=1)
        self._metrics.write(json.dumps(json_safe(data)) + "\n")

    def truncate_metrics(self, before_step: int) -> None:
        """Drop metric lines from steps a resumed run will redo."""
        path = self.path / METRICS
        if not path.exists():
            return
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] < before_step]
        atomic_write(path, lambda f: f.write("".join(line + "\n" for line in keep).encode()))

    def remove(self, *names: str) -> None:
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
