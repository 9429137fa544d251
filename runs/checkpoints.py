"""checkpoint.pt: the latest training state of a run, kept so that no crash can leave a run without one it can load.

A checkpoint is written to a temporary file beside the old one, flushed to disk (fsync), read back and compared byte
for byte with what was serialised, and only then renamed over `checkpoint.pt`; the checkpoint it replaces is kept as
`checkpoint.previous.pt`. A process killed at any moment, or a disk that fills up, therefore leaves either the old
pair or the new pair, each verified when it was written. Should `checkpoint.pt` still be unreadable when a run
resumes (a pre-empted node's file system, a file cut short by hand), `load_checkpoint` falls back to the previous
one, or to a fresh start, and says in one line which file it could not read and what it did instead.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import torch

from record import CHECKPOINT, PREVIOUS_CHECKPOINT, UNREADABLE_CHECKPOINT, atomic_write

log = logging.getLogger(__name__)


class CheckpointNotVerified(OSError):
    """The checkpoint read back from disk is not what was written."""


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write `state` as the run's checkpoint, verified, keeping the one it replaces as the previous checkpoint."""
    run_dir = Path(run_dir)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).digest()

    def write(f) -> None:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        f.seek(0)
        if hashlib.sha256(f.read()).digest() != digest:
            raise CheckpointNotVerified(f"{run_dir / CHECKPOINT}: the bytes read back differ from those written")

    path = run_dir / CHECKPOINT
    atomic_write(path, write, before_replace=lambda: _keep_previous(path))


def _keep_previous(path: Path) -> None:
    if path.exists():
        os.replace(path, path.parent / PREVIOUS_CHECKPOINT)


def _load(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "progress" not in state:
        raise ValueError("not a training state")
    return state


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The latest checkpoint that loads: checkpoint.pt, else the previous one, else None (a fresh start). Each file
    that does not load is named in one log line with the reason and what is done instead, and set aside (as
    checkpoint.unreadable.pt), so the next save does not keep it as the previous checkpoint."""
    run_dir = Path(run_dir)
    candidates = [run_dir / CHECKPOINT, run_dir / PREVIOUS_CHECKPOINT]
    for i, path in enumerate(candidates):
        if not path.exists():
            continue
        try:
            return _load(path)
        except Exception as exc:  # noqa: BLE001 - any failure to load means: use an older state
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            later = [p for p in candidates[i + 1:] if p.exists()]
            instead = f"trying {later[0].name}" if later else "starting afresh"
            log.warning("%s cannot be loaded (%s: %s); %s", path, type(exc).__name__, reason[:200], instead)
            os.replace(path, run_dir / UNREADABLE_CHECKPOINT)
    return None
