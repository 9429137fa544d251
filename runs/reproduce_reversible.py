"""`python -m runs.reproduce_reversible --scale smoke|quick|paper [--launcher NAME] [--table T ...]`: every table of
McCallum & Foster's reversible-solvers paper, as Hydra multiruns into runs/reversible/<scale>/<table>/ (or --out).

The grid of each table lives in its experiment file, conf/experiment/reversible/<table>.yaml, under
`reversible_grid.<scale>`: one Hydra multirun per line. The convergence-order figure has no training and is
computed by runs.reversible_convergence. A failed run is recorded in its result.json and the reproduction goes on; at
paper scale a table whose data are absent (the measured systems, offline) is skipped with a message. `make reproduce-reversible`
calls this, then `python -m analysis.reversible`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "conf" / "experiment" / "reversible"
TABLES = ["grad_error", "complexity", "cnf", "white_dwarf", "oscillator", "pendulum"]
SCALES = ("smoke", "quick", "paper")


def tables_available() -> list[str]:
    """TABLES, plus the neural-CDE table once its task (issue 4's ncde_uea) is in conf/task."""
    return TABLES + (["cde"] if (ROOT / "conf" / "task" / "ncde_uea.yaml").exists() else [])


def grid(table: str, scale: str) -> list[list[str]]:
    spec = OmegaConf.load(EXPERIMENTS / f"{table}.yaml")
    return [list(map(str, line)) for line in spec.reversible_grid[scale]]


def missing_data(table: str, scale: str) -> str | None:
    """Why a table cannot run at this scale, or None: at paper scale the measured systems need the authors' files
    (smoke and quick fall back to the task's simulated stand-in, which each result's `dataset` names)."""
    if table not in ("oscillator", "pendulum") or scale != "paper":
        return None
    from tasks.physical_system import SYSTEMS, fetch, resolve_data_dir

    spec = OmegaConf.load(ROOT / "conf" / "task" / "physical_system.yaml")
    file = resolve_data_dir(spec.data_dir) / SYSTEMS["double_linear" if table == "oscillator" else "double_pend"][0]
    if file.exists():
        return None
    try:
        fetch(file)
    except OSError as exc:
        return f"{file} is absent and could not be downloaded ({exc})"
    return None


def statuses(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in out.rglob("result.json"):
        status = json.loads(path.read_text()).get("status", "failed")
        counts[status] = counts.get(status, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="paper")
    parser.add_argument("--launcher", default="", help="hydra/launcher choice (e.g. slurm); empty: in process")
    parser.add_argument("--table", action="append", help="default: every table")
    parser.add_argument("--out", type=Path, help="default: runs/reversible/<scale>")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    tables = args.table or tables_available()
    unknown = sorted(set(tables) - set(TABLES + ["cde"]))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES + ['cde'])}")
    out_root = (args.out or Path("runs") / "reversible" / args.scale).resolve()
    failed = 0
    for table in tables:
        reason = missing_data(table, args.scale)
        if reason:
            print(f"[reversible] {table}: skipped, {reason}", flush=True)
            continue
        for line in grid(table, args.scale):
            cmd = [sys.executable, "-m", "runs.train", "-m", f"+experiment=reversible/{table}", f"scale={args.scale}",
                   "progress=false", f"hydra.sweep.dir={out_root / table}",
                   *(["logger=none"] if args.scale == "smoke" else []), *line]
            cmd += [f"hydra/launcher={args.launcher}"] if args.launcher else []
            print("[reversible] " + " ".join(cmd[1:]), flush=True)
            if not args.dry_run:
                failed += subprocess.run(cmd, cwd=ROOT).returncode != 0
        if not args.dry_run:
            print(f"[reversible] {table}: {statuses(out_root / table)}", flush=True)
    cmd = [sys.executable, "-m", "runs.reversible_convergence", "--scale", args.scale, "--out",
           str(out_root / "convergence")]
    print("[reversible] " + " ".join(cmd[1:]), flush=True)
    if not args.dry_run:
        failed += subprocess.run(cmd, cwd=ROOT).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
