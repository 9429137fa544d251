"""A run's config fingerprint: what a checkpoint or a finished result must match before it is reused."""

from __future__ import annotations

import hashlib

from omegaconf import DictConfig, OmegaConf

# Settings that change neither what a run computes nor its directory (see hydra.job.config.override_dirname).
# `sweep` is the reproduction grid an experiment file carries (which cells exist), not what a cell computes.
NOT_FINGERPRINTED = ("out_dir", "logger", "rerun", "progress", "device", "sweep")


def config_fingerprint(cfg: DictConfig) -> str:
    """A short hash of everything in the resolved config that can change a run's numbers."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    for key in NOT_FINGERPRINTED:
        container.pop(key, None)
    text = OmegaConf.to_yaml(OmegaConf.create(container), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
