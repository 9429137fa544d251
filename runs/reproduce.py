"""`python -m runs.reproduce PAPER [--scale S] [--only A,B] [--out DIR] [--dry-run] [OVERRIDE ...]`: every table of
one paper (seminorm, gq, reversible), as Hydra multiruns into runs/PAPER/SCALE/<experiment>/.

Each file `conf/experiment/PAPER/<experiment>.yaml` holds its table's settings and, under `sweep.<scale>`, the grids
to run at that scale: one Hydra multirun per line, each line a list of overrides exactly as on the command line
(one line per grid, so pairs such as method=adjoint + norm=seminorm need no cartesian product with the rest).
OVERRIDEs are appended to every line: `logger=none`, or `hydra/launcher=slurm hydra.launcher.partition=gpu` to
hand the cells to a cluster (the Makefile's LAUNCHER does that).

Every multirun runs in this one process through the same Hydra entry as `python -m runs.train -m ...` (same
configs, same run directories: a finished cell is skipped when re-launched, an interrupted one resumes), which saves
a Python start-up per grid. A failed cell is recorded in its result and the reproduction goes on. Some papers
also have computations that train nothing (SCRIPTS); they run after the sweeps, into OUT/<name>/.
`make reproduce-PAPER` runs this, then `python -m analysis.PAPER OUT` (tables) and analysis/notebooks/PAPER.py
(figures).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import hydra
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parent.parent / "conf"
SCALES = ("smoke", "quick", "paper")
# Per paper: computations that are not training runs, as (output folder, module with main(argv)).
SCRIPTS = {"reversible": [("convergence", "runs.reversible_convergence")]}


def papers() -> list[str]:
    return sorted(path.name for path in (CONF / "experiment").iterdir() if path.is_dir())


def experiments(paper: str) -> list[str]:
    return sorted(path.stem for path in (CONF / "experiment" / paper).glob("*.yaml"))


def commands(paper: str, name: str, scale: str, out: Path, overrides: list[str]) -> list[list[str]]:
    """The `runs.train -m ...` argument lists of one experiment at one scale."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / paper / f"{name}.yaml"))
    grids = (spec.get("sweep") or {}).get(scale)
    if not grids:
        raise ValueError(f"conf/experiment/{paper}/{name}.yaml has no sweep.{scale} grid")
    return [["-m", f"+experiment={paper}/{name}", f"scale={scale}", f"hydra.sweep.dir={out / name}",
             *map(str, line), *overrides] for line in grids]


def launch(argv: list[str]) -> int:
    """`python -m runs.train <argv>`, in this process (Hydra reads sys.argv); its exit status."""
    from runs import train  # registers the run_subdir resolver

    entry = hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(train.main.__wrapped__)
    saved = sys.argv
    sys.argv = ["runs.train", *argv]
    try:
        entry()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper", choices=papers())
    parser.add_argument("--scale", choices=SCALES, default="paper")
    parser.add_argument("--only", default=None, help="comma-separated experiment names (default: all)")
    parser.add_argument("--out", type=Path, help="default: runs/PAPER/SCALE")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    parser.add_argument("overrides", nargs="*", help="appended to every run's overrides")
    args = parser.parse_intermixed_args(argv)
    names = experiments(args.paper) if args.only is None else args.only.split(",")
    unknown = sorted(set(names) - set(experiments(args.paper)))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(experiments(args.paper))}")
    out = (args.out or Path("runs") / args.paper / args.scale).resolve()
    failed = []
    for name in names:
        for line in commands(args.paper, name, args.scale, out, args.overrides):
            print("+ python -m runs.train", " ".join(line), flush=True)
            if not args.dry_run and launch(line) != 0:
                failed.append(name)
    for folder, module in SCRIPTS.get(args.paper, []):
        line = ["--scale", args.scale, "--out", str(out / folder)]
        print(f"+ python -m {module}", " ".join(line), flush=True)
        if not args.dry_run and importlib.import_module(module).main(line) != 0:
            failed.append(folder)
    if failed:
        print(f"reproduce {args.paper}: could not launch {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    print(f"results: {out}; tables: python -m analysis.{args.paper} {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
