"""What the benchmark sections share: the composed config of a run, and wall time with the device synchronised."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: list[str]) -> DictConfig:
    """The config `python -m runs.train <overrides>` would run, without launching it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync = synchronizer(device)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start
