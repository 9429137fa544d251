"""`python -m runs.bench [--section NAME ...]`: the harness's benchmarks, each a section that prints a table and
writes it to runs/bench/<section>.md. Ratios are measured within one process, same problem, same device.

To add a section: a module with `run(args) -> str` (Markdown) and one entry in SECTIONS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SECTIONS = {
    "overhead": "runs.bench_overhead",
    "reversible": "runs.bench_reversible",
    "methods": "runs.bench_methods",
}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), help="default: every section")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a small shared machine, fewer threads, steadier timings)")
    parser.add_argument("--steps", type=lambda text: [int(n) for n in text.split(",")],
                        help="reversible section: step counts, comma-separated (default 100,1000,10000)")
    parser.add_argument("--problem", action="append", type=int,
                        help="methods section: only the N-th problem (1 = small CNF, 2 = nested spheres, 3 = sines)")
    args = parser.parse_args(argv)
    if args.problem:
        importlib.import_module(SECTIONS["methods"]).check_problems(args.problem)
    torch.set_num_threads(args.threads)
    args.device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                               else "cpu" if args.device == "auto" else args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.section or list(SECTIONS):
        text = importlib.import_module(SECTIONS[name]).run(args)
        (args.out / f"{name}.md").write_text(text)
        print(text)
        print(f"(written to {args.out / (name + '.md')})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
