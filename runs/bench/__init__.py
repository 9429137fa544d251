"""`python -m runs.bench [--section NAME ...]`: the harness's benchmarks, each a section that prints a table and
writes it to runs/bench/<section>.md. Ratios are measured within one process, same problem, same device.

Sections (one module each, using only the methods' public API): `overhead` (the harness against a bare torchdiffeq
loop), `reversible` (one gradient against the number of steps: reversible, direct, checkpointing), `methods`
(every gradient method on three problems). Shared helpers are in `runs.bench.common`.
To add a section: a module with `run(args) -> str` (Markdown) and one entry in SECTIONS.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import torch

SECTIONS = {
    "overhead": "runs.bench.overhead",
    "reversible": "runs.bench.reversible",
    "methods": "runs.bench.methods",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runs.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), help="default: every section")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats (the methods section: interleaved rounds); default: the section's DEFAULT_REPEATS, "
                             "else 3")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a small shared machine, fewer threads, steadier "
                             "timings)")
    parser.add_argument("--steps", type=lambda text: [int(n) for n in text.split(",")],
                        help="reversible section: step counts, comma-separated (default 100,1000,3000)")
    parser.add_argument("--problem", action="append", type=int,
                        help="methods section: only the N-th problem (1 = small CNF, 2 = nested spheres, 3 = sines)")
    args = parser.parse_args(argv)
    if args.problem:
        importlib.import_module(SECTIONS["methods"]).check_problems(args.problem)
    torch.set_num_threads(args.threads)
    args.device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                               else "cpu" if args.device == "auto" else args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    repeats = args.repeats
    for name in args.section or list(SECTIONS):
        module = importlib.import_module(SECTIONS[name])
        args.repeats = repeats if repeats is not None else getattr(module, "DEFAULT_REPEATS", 3)
        text = module.run(args)
        (args.out / f"{name}.md").write_text(text)
        print(text)
        print(f"(written to {args.out / (name + '.md')})\n")
    return 0
