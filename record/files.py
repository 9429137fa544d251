"""The files of a run directory: their names, and the writers (atomic where a half-written file would mislead)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from record.result import EvalRow, PassRow, RunResult, Status, StepRow

RESULT = "result.json"
PREVIOUS_RESULT = "result.previous.json"  # a failed attempt's result, kept beside the next attempt
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.previous.pt"  # the one the latest replaced (runs/checkpoints.py)
UNREADABLE_CHECKPOINT = "checkpoint.unreadable.pt"  # a checkpoint that did not load, set aside
LOCK = ".lock"  # held by the process running the run (record.lock)
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


class RecordWriteError(OSError):
    """A file of the record could not be written; the message names the file and the operating system's error."""


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any],
                 before_replace: Callable[[], Any] | None = None) -> None:
    """Write to a temp file beside `path` (opened for reading too), then rename over it: a killed process leaves the
    old file or the new one, never half of one. (No fsync here: pre-emption kills processes, not machines; the
    checkpoint's writer fsyncs itself.) `before_replace` runs between the two, e.g. to keep the old file. An
    operating-system error becomes a `RecordWriteError` naming `path`."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)  # mkstemp makes it private; the record is for every reader
        with os.fdopen(fd, "w+b") as f:
            write(f)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except OSError as exc:
        raise RecordWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)


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
        """The traceback of a failed attempt, best effort (the disk may be the reason the attempt failed)."""
        try:
            (self.path / ERROR_LOG).write_text(text)
        except OSError:
            pass

    # metrics.jsonl
    def append_metrics(self, row: StepRow | EvalRow | PassRow) -> None:
        data = row.as_json() if isinstance(row, (EvalRow, PassRow)) else vars(row)
        try:
            if self._metrics is None:
                self._metrics = open(self.path / METRICS, "a", buffering=1)
            self._metrics.write(json.dumps(json_safe(data)) + "\n")
        except OSError as exc:
            raise RecordWriteError(exc.errno, f"cannot write {self.path / METRICS}: {exc.strerror or exc}") from exc

    def truncate_metrics(self, before_step: int) -> list[str]:
        """Drop the metric lines of steps a resumed run will redo (so each step is recorded once), and any line a
        killed write left unfinished; returns what was dropped, in words, for the log."""
        path = self.path / METRICS
        if not path.exists():
            return []
        keep, broken, later = [], 0, 0
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                step = json.loads(line)["step"]
            except (json.JSONDecodeError, KeyError, TypeError):
                broken += 1
                continue
            if step < before_step:
                keep.append(line)
            else:
                later += 1
        if broken == 0 and later == 0:
            return []
        atomic_write(path, lambda f: f.write("".join(line + "\n" for line in keep).encode()))
        said = [f"{path}: dropped {broken} unfinished line(s) (a write cut short)"] if broken else []
        return said + ([f"{path}: dropped {later} line(s) of steps >= {before_step}, to be redone"] if later else [])

    def remove(self, *names: str) -> None:
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
