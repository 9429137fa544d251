"""Entry point: `python -m runs.train task=cnf_toy method=adjoint norm=seminorm scale=smoke` (add -m for a sweep).

Thin on purpose: Hydra composes the config, `runs.loop.run` does the run and writes its directory. A single run
that fails exits non-zero with one line; inside a sweep a failed run is recorded and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from record import RESULT, Status
from runs.loop import run
from runs.resume import Interrupted

log = logging.getLogger("runs.train")


def run_subdir(task: str, method: str, norm: str, solver: str, seed: int, overrides: str) -> str:
    """A run's directory below the output root: readable, and a pure function of the command line's overrides, so
    re-launching the same run finds its own checkpoint and result."""
    digest = hashlib.sha1(str(overrides).encode()).hexdigest()[:8]
    return f"{task}/{method}-{norm}/{solver}-s{seed}-{digest}"


OmegaConf.register_new_resolver("run_subdir", run_subdir, replace=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        result = run(cfg, run_dir)
    except Interrupted as stop:  # SIGTERM/SIGUSR1/SIGUSR2 in a plain process (submitit requeues before this)
        print(f"runs.train: {stop}; re-run the same command to resume ({run_dir})", file=sys.stderr)
        sys.exit(stop.exit_code)
    metric = result.metric or "metric"
    log.info(
        "%s | %s %s | fwd/bwd NFE per iter %s/%s | %s",
        result.status, metric, _fmt(result.get(metric), ".4g"), _fmt(result.fwd_nfe), _fmt(result.bwd_nfe), run_dir,
    )
    if result.status != Status.OK and hydra_cfg.mode != RunMode.MULTIRUN:
        print(f"runs.train: {result.status}: {result.error} (see {run_dir / RESULT})", file=sys.stderr)
        sys.exit(1)


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if not isinstance(value, (int, float)) else format(value, spec)


if __name__ == "__main__":
    main()
