"""Cluster launchers that do not resubmit finished cells (a Hydra plugin: Hydra instantiates launchers only from the
`hydra_plugins` namespace package, hence this package's place).

Every run already skips itself when its result says ok for the same config (runs.loop.run), but on a cluster a
skipped cell is still a job: it waits in the queue, starts Python and exits. Re-launching a sweep of hundreds of
cells to redo three failed ones would queue hundreds of such jobs. These launchers (hydra-submitit-launcher's, with
one step added) work out each cell's run directory before submitting, exactly as the job itself will, and submit
only the cells without an ok result for the same config fingerprint. `rerun=true` submits everything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from record import Status, config_fingerprint, read_result

log = logging.getLogger(__name__)


def finished_result(sweep_config: DictConfig) -> tuple[Path | None, dict | None]:
    """(the cell's run directory, its result if that says ok for this very config, else None), worked out as the
    job will (hydra.core.utils.run_job); anything that cannot be worked out here counts as not finished."""
    hydra_config = HydraConfig.instance()
    launcher_cfg = hydra_config.cfg
    try:
        hydra_config.set_config(sweep_config)
        run_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        result = read_result(run_dir)
        task_cfg = OmegaConf.masked_copy(sweep_config, [str(k) for k in sweep_config if k != "hydra"])
        fingerprint = config_fingerprint(task_cfg)
    except Exception:  # noqa: BLE001 - no result yet, unreadable, or a config only the job can resolve
        return None, None
    finally:
        if launcher_cfg is not None:
            hydra_config.set_config(launcher_cfg)
    ok = result is not None and result.status == Status.OK and not task_cfg.get("rerun")
    return run_dir, result if ok and result.config_fingerprint in (None, fingerprint) else None


class SkipFinished:
    """Mixin for a hydra-submitit launcher: `launch` submits only the cells that are not finished."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        todo: list[Sequence[str]] = []
        returns: dict[int, JobReturn] = {}
        for index, overrides in enumerate(job_overrides):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            run_dir, result = finished_result(sweep_config)
            if result is None:
                todo.append(overrides)
                continue
            with open_dict(sweep_config):
                del sweep_config["hydra"]
            returns[index] = JobReturn(overrides=list(overrides), cfg=sweep_config, working_dir=str(run_dir),
                                       task_name="train", status=JobStatus.COMPLETED, _return_value=None)
        if returns:
            log.info("not submitting %d of %d cells: their results say ok for the same config",
                     len(returns), len(job_overrides))
        submitted = iter(super().launch(todo, initial_job_idx) if todo else [])  # type: ignore[misc]
        return [returns[i] if i in returns else next(submitted) for i in range(len(job_overrides))]


try:  # hydra-submitit-launcher comes with the [cluster] and [dev] extras; without it there is nothing to extend
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
except ImportError:  # pragma: no cover
    pass
else:

    class SlurmSkipFinished(SkipFinished, SlurmLauncher):
        """hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml)."""

    class LocalSkipFinished(SkipFinished, LocalLauncher):
        """hydra/launcher=submitit_local with hydra.launcher._target_=<this class>."""
