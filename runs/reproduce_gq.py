"""`python -m runs.reproduce_gq --scale quick [--launcher slurm] [--only nested_spheres,...]`: every table and figure
of the GQ paper (Norcliffe & Deisenroth 2023), one Hydra multirun per grid in `conf/experiment/gq/<name>.yaml`.

Each experiment file holds its settings and, under `gq_sweep.<scale>`, the grids to sweep at that scale (one
multirun each, so that pairs such as method=adjoint + norm=seminorm need no cartesian product). Results land in
`runs/gq/<scale>/<experiment>/`, one run directory per grid point; a finished run is skipped when re-launched and an
interrupted one resumes from its checkpoint. `python -m analysis.gq runs/gq/<scale>` prints the tables.

Every multirun is launched in this one process through the same Hydra entry as `python -m runs.train -m ...` (same
configs, same run directories), which saves a Python start-up per grid; `--launcher` hands the jobs to a Hydra
launcher (e.g. slurm) exactly as `runs.train -m hydra/launcher=...` would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import hydra
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parent.parent / "conf"
EXPERIMENTS = CONF / "experiment" / "gq"
SCALES = ("smoke", "quick", "paper")


def experiments() -> list[str]:
    return sorted(path.stem for path in EXPERIMENTS.glob("*.yaml"))


def commands(name: str, scale: str, out: Path, launcher: str | None, extra: list[str]) -> list[list[str]]:
    """The `python -m runs.train -m ...` command lines of one experiment at one scale."""
    grids = OmegaConf.to_container(OmegaConf.load(EXPERIMENTS / f"{name}.yaml")).get("gq_sweep", {}).get(scale)
    if not grids:
        raise ValueError(f"conf/experiment/gq/{name}.yaml has no gq_sweep.{scale} grid")
    lines = []
    for grid in grids:
        line = [sys.executable, "-m", "runs.train", "-m", f"+experiment=gq/{name}", f"scale={scale}",
                f"hydra.sweep.dir={out / scale / name}", *(f"{key}={value}" for key, value in grid.items())]
        if launcher:
            line.append(f"hydra/launcher={launcher}")
        lines.append(line + extra)
    return lines


def launch(argv: list[str]) -> int:
    """Run `python -m runs.train <argv>` in this process (Hydra parses sys.argv); return its exit status."""
    from runs import train  # noqa: PLC0415 - registers the run_subdir resolver; heavy imports only when launching

    entry = hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")(train.main.__wrapped__)
    saved = sys.argv
    sys.argv = ["runs.train", *argv]  # argv: "-m" (multirun) and the overrides
    try:
        entry()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="paper")
    parser.add_argument("--launcher", default=None, help="a hydra/launcher option (e.g. slurm, submitit_local)")
    parser.add_argument("--only", default=None, help="comma-separated experiment names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/gq"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    parser.add_argument("overrides", nargs="*", help="extra overrides for every run (e.g. logger=none device=cpu)")
    args = parser.parse_args(argv)
    names = experiments() if args.only is None else args.only.split(",")
    unknown = sorted(set(names) - set(experiments()))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(experiments())}")
    failed = []
    for name in names:
        for line in commands(name, args.scale, args.out, args.launcher, args.overrides):
            print("+", " ".join(line[1:]), flush=True)
            if not args.dry_run and launch(line[3:]) != 0:
                failed.append(name)
    if failed:
        print(f"reproduce_gq: sweeps failed to launch: {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    print(f"results: {args.out / args.scale}; tables: python -m analysis.gq {args.out / args.scale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
