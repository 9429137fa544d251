"""`python -m analysis.status RUNS_DIR`: for each sweep below RUNS_DIR, how many cells are ok, running, failed or
missing, then the cells that are not ok, with each failed cell's error.

- ok       the run's result says ok
- failed   the result says anything else (diverged, solver_failed, oom, failed): its error is shown
- running  a process holds the run directory's lock (its PID is shown), or the directory exists (Hydra wrote
           .hydra/) but holds no result yet: queued for requeue, or killed without a chance to record it; the
           last write to the metrics log / checkpoint (a heartbeat: one line per training step) tells which.
           Re-launching the sweep resumes it.
- unreadable  the result file exists but cannot be read (not UTF-8, not JSON, not an object); the reason is
           shown. Re-launching the sweep runs the cell again.
- missing  a cell the sweep's launches define (record.sweeps: its launches file, else Hydra's) with no directory:
           not started yet (e.g. pending in the SLURM queue) or never launched. Re-launching the sweep runs it.

A sweep is a directory holding record.SWEEPS or record.MULTIRUN; run directories outside any sweep are listed as
single runs. Exit status 0 whatever the cells' states (this reports, it does not judge).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from record import (
    CHECKPOINT,
    HYDRA_CONFIG,
    HYDRA_OVERRIDES,
    METRICS,
    MULTIRUN,
    RESULT,
    SWEEPS,
    Status,
    Unreadable,
    read_metrics,
    read_result,
    step_rows,
)
from record.lock import holder
from record.sweeps import DEFAULT_EXCLUDED, cell_key, sweep_cells

STATES = ("ok", "running", "failed", "unreadable", "missing")
SINGLES = "(runs outside sweeps)"  # the report's group of run directories that belong to no sweep
SKIP_DIRS = {".submitit", "wandb", ".hydra"}


@dataclass
class Cell:
    key: tuple[str, ...]
    state: str
    detail: str = ""
    run_dir: Path | None = None


def _is_run_dir(path: Path) -> bool:
    return (path / HYDRA_CONFIG).exists() or any((path / n).exists() for n in (RESULT, CHECKPOINT))


def _walk(root: Path):
    """Sweep directories and run directories below root (not descending into run directories)."""
    sweeps, runs = [], []

    def visit(path: Path) -> None:
        if (path / SWEEPS).exists() or (path / MULTIRUN).exists():
            sweeps.append(path)
        if _is_run_dir(path):
            runs.append(path)
            return
        for child in sorted(path.iterdir()):
            if not child.is_dir() or child.is_symlink() or child.name in SKIP_DIRS:
                continue
            visit(child)

    visit(root)
    return sweeps, runs


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def describe_run(run_dir: Path) -> tuple[str, str]:
    """(state, detail) of one run directory."""
    pid = holder(run_dir)
    result_path = run_dir / RESULT
    if result_path.exists() and pid is None:
        try:
            result = read_result(run_dir)
        except Unreadable as exc:
            return "unreadable", str(exc)
        if result.status == Status.OK:
            return "ok", ""
        return "failed", f"{result.status}: {result.error}"
    total = None
    steps = len(step_rows(read_metrics(run_dir)))
    config = run_dir / HYDRA_CONFIG
    if config.exists():
        try:
            total = yaml.safe_load(config.read_text())["train"]["iterations"]
        except (yaml.YAMLError, KeyError, TypeError):
            total = None
    beats = [p.stat().st_mtime for p in (run_dir / METRICS, run_dir / CHECKPOINT, config) if p.exists()]
    detail = (f"PID {pid}, " if pid else "") + f"step {steps}/{total if total is not None else '?'}"
    if beats:
        detail += f", last write {_age(max(0.0, time.time() - max(beats)))} ago"
    return "running", detail


def _run_key(run_dir: Path, excluded: tuple[str, ...]) -> tuple[str, ...]:
    overrides = run_dir / HYDRA_OVERRIDES
    if overrides.exists():
        return cell_key(list(yaml.safe_load(overrides.read_text()) or []), excluded)
    return (str(run_dir),)  # a run directory not made by Hydra: its path is its identity


def collect(root: Path) -> dict[Path, list[Cell]]:
    """Every sweep (and the single runs) below root, with the state of each of its cells."""
    sweeps, runs = _walk(root)
    # deepest sweep first, so a run belongs to its nearest enclosing sweep
    owners = sorted(sweeps, key=lambda p: len(p.parts), reverse=True)
    grouped: dict[Path, list[Path]] = {s: [] for s in sweeps}
    singles: list[Path] = []
    for run_dir in runs:
        owner = next((s for s in owners if run_dir.is_relative_to(s)), None)
        (grouped[owner] if owner is not None else singles).append(run_dir)
    report: dict[Path, list[Cell]] = {}
    for sweep in sorted(sweeps):
        expected, excluded, _ = sweep_cells(sweep)
        cells: dict[tuple[str, ...], Cell] = {}
        for run_dir in grouped[sweep]:
            key = _run_key(run_dir, excluded)
            state, detail = describe_run(run_dir)
            cells[key] = Cell(key, state, detail, run_dir)
        for key in expected - set(cells):
            cells[key] = Cell(key, "missing")
        report[sweep] = sorted(cells.values(), key=lambda c: c.key)
    if singles:  # runs outside any sweep: no cells to expect, each directory is its own cell
        cells = [Cell(_run_key(r, DEFAULT_EXCLUDED) if (r / ".hydra").exists() else (str(r.relative_to(root)),),
                      *describe_run(r), r) for r in singles]
        report[root / SINGLES] = sorted(cells, key=lambda c: str(c.run_dir))
    return report


def cell_label(cell: Cell, common: set[str]) -> str:
    """A cell's name in a status table: the overrides it does not share with every other cell of its sweep."""
    varying = [o for o in cell.key if o not in common]
    return " ".join(varying) or " ".join(cell.key) or "(no overrides)"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda row: "| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def render(report: dict[Path, list[Cell]], root: Path, show_ok: bool = False) -> str:
    if not report:
        return f"no sweeps or runs below {root}"
    counts = []
    for sweep, cells in report.items():
        n = {s: sum(c.state == s for c in cells) for s in STATES}
        counts.append([str(sweep), str(len(cells)), *(str(n[s]) for s in STATES)])
    parts = [_table(["sweep", "cells", *STATES], counts)]
    for sweep, cells in report.items():
        shown = [c for c in cells if show_ok or c.state != "ok"]
        if not shown:
            continue
        single = sweep.name == SINGLES
        base = sweep.parent if single else sweep
        common = set.intersection(*(set(c.key) for c in cells)) if len(cells) > 1 and not single else set()
        rows = [[c.state, cell_label(c, common), c.detail, str(c.run_dir.relative_to(base)) if c.run_dir else "-"]
                for c in sorted(shown, key=lambda c: (STATES.index(c.state), c.key))]
        parts.append(f"\n{sweep}\n" + _table(["state", "cell", "detail", "run dir"], rows))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.status", description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--all", action="store_true", help="list ok cells too")
    args = parser.parse_args(argv)
    root = args.runs_dir
    if not root.is_dir():
        parser.error(f"{root} is not a directory")
    print(render(collect(root), root, show_ok=args.all))


if __name__ == "__main__":
    main()
