"""checkpoint.pt: the latest training state of a run, written atomically, so an interrupted run resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from record import CHECKPOINT, atomic_write


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    atomic_write(Path(run_dir) / CHECKPOINT, lambda f: torch.save(state, f))


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
