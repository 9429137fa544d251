"""What a sweep defines, kept beside its results so `analysis.status` can tell missing cells from finished ones.

Hydra writes `multirun.yaml` into the sweep directory, but each launch overwrites it, and a sweep directory often
receives several launches (`make demo` sends two; a re-launch with one more seed is a third). `RecordSweep`, a Hydra
callback enabled in conf/config.yaml, appends every launch's overrides to `<sweep dir>/sweeps.jsonl`. `sweep_cells`
expands them into cells exactly as Hydra's basic sweeper does (a cartesian product of the comma-separated choices).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from record.files import MULTIRUN, SWEEPS

# Overrides that change neither what a run computes nor its directory (hydra.job.config.override_dirname).
DEFAULT_EXCLUDED = ("out_dir", "logger", "rerun", "progress", "device")


class RecordSweep(Callback):
    """Appends one line per multirun launch: its overrides, sweeper params and the keys a cell's identity ignores."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = config.hydra
        line = {
            "launched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "overrides": list(hydra.overrides.task),
            "params": _params(hydra),
            "excluded": list(hydra.job.config.override_dirname.exclude_keys),
            "launcher": hydra.launcher.get("_target_"),
        }
        sweep_dir = Path(hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(sweep_dir / SWEEPS, "a") as f:
            f.write(json.dumps(line) + "\n")


def _params(hydra: DictConfig) -> dict[str, Any]:
    params = hydra.sweeper.get("params")
    return {} if params is None else OmegaConf.to_container(params, resolve=False)


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def cell_key(overrides: list[str], excluded: tuple[str, ...] | list[str] = DEFAULT_EXCLUDED) -> tuple[str, ...]:
    """A cell's identity: its overrides without those that do not change what it computes, in a fixed order."""
    return tuple(sorted(o for o in overrides if override_key(o) not in excluded))


def expand(overrides: list[str], params: dict[str, Any] | None = None) -> list[list[str]]:
    """The cells of one launch, as Hydra's basic sweeper makes them: params from hydra.sweeper.params first, then the
    command line's overrides, a later one replacing an earlier one of the same key; every comma-separated choice of
    a key is one value of a cartesian product (basic_sweeper.BasicSweeper.split_arguments, read at hydra-core
    1.3.2; its range and interval sweeps are not used by this harness and are refused here as they are there)."""
    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ValueError(f"{override.input_line}: only comma-separated choices are swept (basic sweeper)")
    return [list(cell) for cell in itertools.product(*choices.values())]


def sweep_cells(sweep_dir: Path) -> tuple[set[tuple[str, ...]], tuple[str, ...], int]:
    """(cells the sweep's launches define, keys a cell's identity ignores, number of launches found).

    Reads sweeps.jsonl; a sweep launched without it (older checkouts) falls back to multirun.yaml, the last launch."""
    launches = []
    record = sweep_dir / SWEEPS
    if record.exists():
        launches = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    elif (sweep_dir / MULTIRUN).exists():
        hydra = OmegaConf.load(sweep_dir / MULTIRUN).hydra
        launches = [{"overrides": list(hydra.overrides.task),
                     "params": _params(hydra),
                     "excluded": list(hydra.job.config.override_dirname.exclude_keys)}]
    excluded = tuple(launches[-1].get("excluded", DEFAULT_EXCLUDED)) if launches else DEFAULT_EXCLUDED
    cells = set()
    for launch in launches:
        for overrides in expand(launch["overrides"], launch.get("params")):
            cells.add(cell_key(overrides, excluded))
    return cells, excluded, len(launches)
