"""Mirrors of the run record to experiment trackers. The run directory stays the source of truth; a logger only
copies the same keys (analysis never reads W&B)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class NullLogger:
    def log(self, row: dict[str, Any], step: int) -> None:
        pass

    def finish(self, result: dict[str, Any]) -> None:
        pass


class WandbLogger(NullLogger):
    """W&B, offline unless WANDB_MODE says otherwise. The run id is derived from the run directory, so a resumed
    run continues the same W&B run."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        import wandb

        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            group=cfg.logger.group,
            tags=list(cfg.logger.tags),
            name=str(run_dir.name),
            config=OmegaConf.to_container(cfg, resolve=True),
            dir=str(run_dir),
            id=run_id,
            resume="allow",
            mode=os.environ.get("WANDB_MODE", cfg.logger.mode),
            settings=wandb.Settings(console="off", silent=True),
        )

    def log(self, row: dict[str, Any], step: int) -> None:
        self.run.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=step)

    def finish(self, result: dict[str, Any]) -> None:
        for key, value in result.items():
            if isinstance(value, (int, float, str)) or value is None:
                self.run.summary[key] = value
        self.run.finish(exit_code=0 if result.get("status") == "ok" else 1)


def make_logger(cfg: DictConfig, run_dir: Path) -> NullLogger:
    return WandbLogger(cfg, run_dir) if cfg.logger.name == "wandb" else NullLogger()
