"""`python -m runs.gq_accuracy [--fields N] [--tols 1e-3,1e-4,1e-6,1e-8] [--out FILE]`: GQ's gradient errors beside
the continuous adjoint's, field by field and tolerance by tolerance (float64), and what they cost in backward NFE.

The evidence behind GQ's defaults (docs/gq.md, "Node rule and accuracy"): for each of nine small time-dependent MLP
fields (the GQ paper's ODE function: two hidden layers, Softplus; 20 initial states; one to nine intervals between
output times) and each rtol = atol, the relative errors of dL/dtheta and dL/dy0 against float64 direct backprop at
rtol = atol = 1e-11, for torchdiffeq's adjoint (the papers' baseline), for the adjoint with an exact backward solve
(1e-12: the error the forward solve alone leaves, the floor no backward pass beats but by luck), and for each variant
below. A variant's ratio is its error over the adjoint's; its bound ratio is its error over the larger of the
adjoint's and the floor (the acceptance test, tests/test_gq.py, holds it to 1.05 on three of these fields).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from runs.gradcheck import relative_error
from solvers.adjoint import ContinuousAdjoint
from solvers.adjoint_core import CoreAdjoint
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop
from solvers.gq import GaussLegendreAdjoint
from tasks.models.mlp import MLPField

# (seed, state dim, width, weight scale, output times); the first three are tests/test_gq.py's PROBLEMS.
FIELDS = [(0, 3, 16, 1.5, [0.0, 0.4, 1.0]), (1, 5, 64, 1.5, [0.0, 1.0]), (2, 2, 32, 1.5, "linspace(0, 6.28, 10)"),
          (3, 4, 32, 1.0, [0.0, 0.5, 1.0, 1.5, 2.0]), (4, 2, 16, 2.0, [0.0, 1.0]), (5, 6, 64, 1.0, "linspace(0, 3, 7)"),
          (6, 3, 32, 1.5, [0.0, 0.3, 0.6, 1.0]), (7, 2, 64, 1.2, "linspace(0, 4, 9)"), (8, 5, 16, 2.0, [0.0, 2.0])]
VARIANTS = {
    "gq (defaults)": lambda spec: GaussLegendreAdjoint(spec),
    "gq, [y, a] at the forward tolerance": lambda spec: GaussLegendreAdjoint(spec, adjoint_tol_factor=1.0),
    "gq, paper rule (gtol 0.1, min_nodes 1), forward tolerance":
        lambda spec: GaussLegendreAdjoint(spec, gtol=0.1, min_nodes=1, adjoint_tol_factor=1.0),
    "gq (defaults), no warm start": lambda spec: GaussLegendreAdjoint(spec, warm_start=False),
    "adjoint_core (warm start)": lambda spec: CoreAdjoint(spec),
    "adjoint + seminorm": lambda spec: ContinuousAdjoint(spec, norm="seminorm"),
}
REFERENCE = SolverSpec("dopri5", rtol=1e-11, atol=1e-11)


def field_problem(seed: int, dim: int, width: int, scale: float, times) -> tuple[MLPField, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    field = MLPField(dim, width)
    with torch.no_grad():  # scaled in float32, then cast: exactly tests/test_gq.py's TimeMLP
        for p in field.parameters():
            p.mul_(scale)
    field = field.double()
    y0 = torch.randn(20, dim, dtype=torch.float64)
    if isinstance(times, str):  # "linspace(a, b, n)"
        a, b, n = (float(x) for x in times[len("linspace("):-1].split(","))
        ts = torch.linspace(a, b, int(n), dtype=torch.float64)
    else:
        ts = torch.tensor(times, dtype=torch.float64)
    return field, y0, ts


def gradients(method, field, y0, ts) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dtheta, dL/dy0) of L = sum of squares of the outputs after t0 + sum of sin of the last one."""
    y0 = y0.clone().requires_grad_(True)
    ys = method.solve(field, y0, ts)
    loss = (ys[1:] ** 2).sum() + ys[-1].sin().sum()
    params = list(field.parameters())
    grads = torch.autograd.grad(loss, params + [y0])
    return torch.cat([g.flatten() for g in grads[:-1]]), grads[-1].flatten()


def survey(fields: list, tols: list[float]) -> list[dict]:
    rows = []
    for spec_ in fields:
        field, y0, ts = field_problem(*spec_)
        ref = gradients(DirectBackprop(REFERENCE), field, y0, ts)
        for tol in tols:
            spec = SolverSpec("dopri5", rtol=tol, atol=tol)
            base = {}
            for name, make in (("adjoint", lambda s: ContinuousAdjoint(s)),
                               ("floor", lambda s: ContinuousAdjoint(s, adjoint_rtol=1e-12, adjoint_atol=1e-12)),
                               *VARIANTS.items()):
                method = make(spec)
                theta, y0_grad = gradients(method, field, y0, ts)
                base[name] = (relative_error(theta, ref[0]), relative_error(y0_grad, ref[1]), method.nfe.take().bwd_nfe)
            for name in ("adjoint", *VARIANTS):
                err = base[name]
                bound = [max(base["adjoint"][k], base["floor"][k]) for k in range(2)]
                rows.append({"field": spec_[0], "tol": tol, "method": name, "theta": err[0], "y0": err[1],
                             "bwd_nfe": err[2], "ratio": [err[k] / base["adjoint"][k] for k in range(2)],
                             "bound_ratio": [err[k] / bound[k] for k in range(2)]})
    return rows


def render(rows: list[dict], fields: int, tols: list[float]) -> str:
    cases = len({(r["field"], r["tol"]) for r in rows})
    lines = [f"### GQ's gradient errors beside the adjoint's ({fields} fields x rtol = atol in "
             f"{', '.join(f'{t:g}' for t in tols)}: {cases} cases, float64)", "",
             "| method | worst dL/dθ ratio | worst dL/dy0 ratio | worst bound ratio (θ, y0) "
             "| cases above bound x 1.05 | backward NFE, all cases |", "|:--|--:|--:|--:|--:|--:|"]
    for name in ("adjoint", *VARIANTS):
        mine = [r for r in rows if r["method"] == name]
        worst = [max(r["ratio"][k] for r in mine) for k in range(2)]
        bound = [max(r["bound_ratio"][k] for r in mine) for k in range(2)]
        above = sum(1 for r in mine if max(r["bound_ratio"]) > 1.05)
        lines.append(f"| {name} | {worst[0]:.2f} | {worst[1]:.2f} | {bound[0]:.2f}, {bound[1]:.2f} | {above} | "
                     f"{sum(r['bwd_nfe'] for r in mine)} |")
    lines += ["", "Ratio: the method's relative error over the adjoint's (torchdiffeq, default norm), worst case. "
              "Bound ratio: over the larger of the adjoint's and the floor (the adjoint with an exact backward solve).",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=len(FIELDS), help=f"the first N of the {len(FIELDS)} fields")
    parser.add_argument("--tols", type=lambda text: [float(x) for x in text.split(",")],
                        default=[1e-3, 1e-4, 1e-6, 1e-8])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = render(survey(FIELDS[: args.fields], args.tols), min(args.fields, len(FIELDS)), args.tols)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
