"""Entry point: `python -m runs.train task=cnf_toy method=adjoint norm=seminorm scale=smoke` (add -m for a sweep).

Thin on purpose: Hydra composes the config, `runs.loop.run` does the run and writes its directory. A single run
that fails exits non-zero with one line; inside a sweep a failed run is recorded and the sweep goes on. What cannot
even be recorded (a directory that cannot be written, another process on the same run) also ends in one line, with
the path and the operating system's error, not a traceback (`cli`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from record import RESULT, RecordWriteError, Status
from record.lock import RunLocked
from runs.loop import run
from runs.resume import Interrupted

log = logging.getLogger("runs.train")
EXIT_LOCKED = 75  # EX_TEMPFAIL: the run directory is busy; the same command later will work


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
    except RunLocked as exc:
        print(f"runs.train: {exc}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return  # that process records the cell; the sweep goes on
        sys.exit(EXIT_LOCKED)
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


def cli() -> None:
    """`main` with every error that is not a bug reported in one line: Hydra's own errors (an unknown config name,
    which lists the choices) as Hydra words them, and operating-system errors writing the run directory (Hydra
    creates it before `main` runs) with the path and errno. Hydra prints a traceback for the latter unless asked to
    raise (HYDRA_FULL_ERROR), so it is asked to, here only."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        main()
    except HydraException as exc:
        cause = f" ({exc.__cause__})" if isinstance(exc.__cause__, OmegaConfBaseException) else ""
        message = str(exc).split("\nConfig search path:")[0].rstrip()  # the choices, not Hydra's search path
        print(f"runs.train: {message}{cause}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(f"runs.train: {_os_error(exc)}", file=sys.stderr)
        sys.exit(1)


def _os_error(exc: OSError) -> str:
    if isinstance(exc, RecordWriteError) or exc.filename is None:
        return str(exc).splitlines()[0]
    return f"cannot write {exc.filename}: [Errno {exc.errno}] {exc.strerror}"


if __name__ == "__main__":
    cli()
