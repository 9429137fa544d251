"""`python -m runs.reversible_convergence --scale S`: the reversible-solvers paper's convergence-order figure (v2,
experiments/convergence/convergence.py): y' = 0.5 y, y(0) = 1, T = 5, dt = 2^0 .. 2^-4, global error |y_N - e^2.5| of
each base scheme and of its reversible version (lambda = 0.999), and the log-log slope (the observed order).
Writes runs/reversible/<scale>/convergence/convergence.json (no training, so it is not a Hydra run; the scale only
chooses the schemes: smoke takes two).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from solvers.base import SolverSpec
from solvers.direct_rk import DirectRK
from solvers.reversible import Reversible
from solvers.tableaus import get_tableau

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = {"smoke": ["euler", "midpoint"], "quick": ["euler", "midpoint", "ralston3", "rk4"],
           "paper": ["euler", "midpoint", "ralston3", "rk4", "bosh3", "dopri5", "tsit5"]}
STEPS = [2.0**-k for k in range(5)]
RATE, T = 0.5, 5.0


class Linear(nn.Module):
    def forward(self, t, y):
        return RATE * y


def errors(method_cls, scheme: str) -> list[float]:
    y0 = torch.ones(1, dtype=torch.float64)
    ts = torch.tensor([0.0, T], dtype=torch.float64)
    with torch.no_grad():
        return [abs(method_cls(SolverSpec(scheme, step_size=h)).solve(Linear(), y0, ts)[-1].item() - math.exp(RATE * T))
                for h in STEPS]


def slope(errs: list[float]) -> float:
    return float(np.polyfit(np.log(STEPS), np.log(errs), 1)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCHEMES), default="paper")
    parser.add_argument("--out", type=Path, help="default: runs/reversible/<scale>/convergence")
    args = parser.parse_args(argv)
    rows = []
    for scheme in SCHEMES[args.scale]:
        for label, cls in (("base", DirectRK), ("reversible", Reversible)):
            errs = errors(cls, scheme)
            rows.append({"scheme": scheme, "order": get_tableau(scheme).order, "method": label, "dt": STEPS,
                         "error": errs, "slope": slope(errs)})
    out = args.out or ROOT / "runs" / "reversible" / args.scale / "convergence"
    out.mkdir(parents=True, exist_ok=True)
    result = {"experiment": "convergence", "scale": args.scale, "problem": f"y' = {RATE} y, y(0) = 1, T = {T}",
              "coupling": 0.999, "rows": rows, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = out / "convergence.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out / "convergence.json")
    for row in rows:
        print(f"{row['scheme']:>9} {row['method']:>10}  slope {row['slope']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
