"""`python -m analysis.reversible [RUNS_DIR]`: the reversible-solvers paper's tables (McCallum & Foster 2024), ours
beside the authors' figures, from the run directories below RUNS_DIR (default runs/reversible/paper; `make
reproduce-reversible` passes runs/reversible/<scale>).

Each table has the paper's rows and columns. Beside each of our cells (mean ± population std over seeds, as the
authors' scripts aggregate, and the number of runs) stands the authors' figure from analysis/reference/reversible.csv,
labelled "authors' logs": statistics computed from the raw result logs committed in the authors' repositories, not
read from the paper's PDF. Where our measure differs from theirs, the column says so (memory: our graph MiB or peak
CUDA MiB against their nvidia-smi GB of the whole process; runtime: our seconds per training iteration against their
seconds per gradient). Missing cells show "—"; failed runs are counted in each table's `runs` column, never dropped.
Writes RUNS_DIR/tables.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from record import load_results, read_metrics, step_rows

REFERENCE = Path(__file__).resolve().parent / "reference" / "reversible.csv"
KIND = "authors' logs"
REVERSIBLE = "reversible (lambda=0.999)"
DTO = "discretise-then-optimise"


SCHEDULE_NAMES = {"online": "online (diffrax's)", "offline": "offline binomial"}


def checkpoint_label(k, schedule: str) -> str:
    """Our row for checkpointing with k checkpoints under `schedule` (online: the authors' baseline, diffrax's
    RecursiveCheckpointAdjoint; offline: the binomial schedule with its first descent stored going forward)."""
    return f"recursive checkpointing, {SCHEDULE_NAMES[schedule]}, {k} checkpoints"


def authors_row(label: str) -> str | None:
    """The authors' row that stands beside ours: their checkpointing is the online schedule only."""
    if label.startswith("recursive checkpointing, "):
        if SCHEDULE_NAMES["online"] not in label:
            return None
        return label.replace(f"{SCHEDULE_NAMES['online']}, ", "")
    return label


def reference(experiment: str) -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE)
    return frame[frame["experiment"] == experiment]


def reference_hit(ref: pd.DataFrame, row: str, column: str) -> pd.DataFrame:
    """The authors' value(s) of one cell. Rows are '<solver> / <method>'; the v1 logs (cnf, neural_cde) name theirs
    '<method> / <solver>', so the swapped name is tried when the first finds nothing."""
    hit = ref[(ref["row"] == row) & (ref["column"] == column)]
    if hit.empty and " / " in row:
        solver, _, method = row.partition(" / ")
        hit = ref[(ref["row"] == f"{method} / {solver}") & (ref["column"] == column)]
    return hit


def ref_cell(ref: pd.DataFrame, row: str | None, column: str, digits: int = 3) -> str:
    if row is None:
        return "— (theirs: online only)"
    hit = reference_hit(ref, row, column)
    if hit.empty:
        return "—"
    value, std = float(hit["value"].iloc[0]), hit["std"].iloc[0]
    return _fmt(value, None if pd.isna(std) else float(std), digits)


def _fmt(mean: float, std: float | None, digits: int, n: int | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    text = f"{mean:.{digits}g}" + ("" if std is None or math.isnan(std) else f" ± {std:.2g}")
    return text + (f" (n={n})" if n is not None else "")


def ours(values: pd.Series, scale: float = 1.0, digits: int = 3) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna() * scale
    if v.empty:
        return "—"
    return _fmt(float(v.mean()), float(v.std(ddof=0)), digits, len(v))


def best_loss(run_dir: str) -> float:
    """The lowest training loss of a run (the authors report the best loss over iterations)."""
    losses = [row["loss"] for row in step_rows(read_metrics(run_dir))]
    finite = [x for x in losses if isinstance(x, (int, float)) and math.isfinite(x)]
    return min(finite) if finite else math.nan


def method_label(row: pd.Series) -> str:
    method = row.get("method")
    if method == "reversible":
        coupling = row.get("coupling")
        return f"reversible (lambda={coupling:g})" if isinstance(coupling, (int, float)) else REVERSIBLE
    if method == "checkpoint":
        k = row.get("checkpoints")
        schedule = row.get("schedule")
        return checkpoint_label("None" if k is None or pd.isna(k) else int(k),
                                schedule if isinstance(schedule, str) else "offline")
    if method in ("direct", "direct_rk"):
        return DTO
    if method == "adjoint":
        return "continuous adjoint (OTD)"
    return str(method)


def load(table_dir: Path) -> pd.DataFrame:
    frame = load_results(table_dir) if table_dir.exists() else pd.DataFrame()
    if frame.empty:
        return frame
    for key in ("coupling", "checkpoints", "schedule", "graph_mib", "peak_cuda_mib", "grad_abs_error_sum",
                "train_seconds", "seconds_per_iter", "fwd_steps", "bwd_steps", "error"):
        if key not in frame:
            frame[key] = np.nan
    frame["label"] = [method_label(r) for _, r in frame.iterrows()]
    frame["best_loss"] = [best_loss(d) for d in frame["run_dir"]]
    return frame


def runs_column(group: pd.DataFrame) -> str:
    ok = int((group["status"] == "ok").sum())
    failed = group[group["status"] != "ok"]
    text = f"{ok}/{len(group)}"
    if not failed.empty:
        text += " (" + "; ".join(f"{s} x{c}" for s, c in failed["status"].value_counts().items()) + ")"
    return text


def memory(group: pd.DataFrame) -> str:
    """Peak CUDA MiB where measured, else graph MiB (what autograd saves between forward and backward)."""
    if group["peak_cuda_mib"].notna().any():
        return ours(group["peak_cuda_mib"]) + " peak CUDA MiB"
    return ours(group["graph_mib"]) + " graph MiB"


# --------------------------------------------------------------------------------------------------------------
# The tables


def per_method_table(frame: pd.DataFrame, experiment: str, solver_names: dict[str, str], methods: list[str],
                     columns: list[tuple[str, str, Callable[[pd.DataFrame], str], int]]) -> pd.DataFrame:
    """Rows '<solver label> / <method label>' in the paper's order; columns (paper column, our header, our cell)."""
    ref = reference(experiment)
    rows = []
    for solver, solver_label in solver_names.items():
        for label in methods:
            group = frame[(frame["solver"] == solver) & (frame["label"] == label)] if not frame.empty else frame
            row_name = f"{solver_label} / {label}"
            theirs = authors_row(label)
            row = {"row": row_name, "runs": runs_column(group) if len(group) else "not run"}
            ok = group[group["status"] == "ok"] if len(group) else group
            for paper_column, header, fn, digits in columns:
                row[f"{header} — ours"] = fn(ok) if len(ok) else "—"
                row[f"{paper_column} — {KIND}"] = ref_cell(ref, theirs and f"{solver_label} / {theirs}",
                                                          paper_column, digits)
            rows.append(row)
    return pd.DataFrame(rows)


def checkpoint_labels(counts: list[int]) -> list[str]:
    return [REVERSIBLE] + [checkpoint_label(k, schedule) for k in counts for schedule in ("online", "offline")]


def table_cnf(root: Path) -> pd.DataFrame:
    frame = load(root / "cnf")
    return per_method_table(
        frame, "cnf", {"midpoint": "midpoint", "rk4": "rk4", "dopri5": "dopri5"}, [DTO, REVERSIBLE],
        [("peak GPU memory", "memory", memory, 4),
         ("best training loss (NLL)", "best training NLL [nats]", lambda g: ours(g["best_loss"], digits=4), 4)],
    ).assign(row=lambda d: d["row"].str.split(" / ").map(lambda p: f"{p[1]} / {p[0]}"))


def table_white_dwarf(root: Path) -> pd.DataFrame:
    return per_method_table(
        load(root / "white_dwarf"), "white_dwarf",
        {"euler": "euler", "midpoint": "midpoint", "ralston3": "Ralston3", "rk4": "RK4"},
        checkpoint_labels([2, 4, 8, 16, 32, 44]),
        [("best training loss", "best training loss [x1e-4 MSE]", lambda g: ours(g["best_loss"], 1e4), 3),
         ("training runtime", "training runtime [min]", lambda g: ours(g["train_seconds"], 1 / 60), 3)],
    )


def table_oscillator(root: Path) -> pd.DataFrame:
    return per_method_table(
        load(root / "oscillator"), "coupled_oscillator",
        {"euler": "double_linear_euler", "midpoint": "double_linear_midpoint", "ralston3": "double_linear_RK3",
         "rk4": "double_linear_RK4"},
        checkpoint_labels([31, 16, 8, 4, 2]),
        [("training runtime", "training runtime [min]", lambda g: ours(g["train_seconds"], 1 / 60), 3),
         ("best training loss", "best training loss [x1e-3 MSE]", lambda g: ours(g["best_loss"], 1e3), 3)],
    )


def table_pendulum(root: Path) -> pd.DataFrame:
    return per_method_table(
        load(root / "pendulum"), "double_pendulum", {"bosh3": "double_pend_bosh3"},
        checkpoint_labels([32, 16, 8, 4, 2]),
        [("training runtime", "training runtime [min]", lambda g: ours(g["train_seconds"], 1 / 60), 3),
         ("best training loss", "best training loss [x1e-3 MSE]", lambda g: ours(g["best_loss"], 1e3), 3),
         ("mean accepted steps per solve", "accepted steps per solve", lambda g: ours(g["fwd_steps"]), 3)],
    )


def _t_label(t: float) -> str:
    return f"T={t:g}"


def table_grad_error(root: Path) -> pd.DataFrame:
    """Rows: memory of DTO and reversible, gradient error of reversible and OTD; columns: T."""
    frame = load(root / "grad_error")
    ref = reference("regression")
    ts = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    if not frame.empty:
        frame = frame.assign(T=[time_length(r) for _, r in frame.iterrows()])
        ts = sorted(frame["T"].dropna().unique())
    specs = [  # (paper row, our methods, cell); the paper's reversible runs use lambda = 0.99 (see `coupling`)
        ("discretise-then-optimise memory", ("direct", "direct_rk"), lambda g: memory(g)),
        ("reversible memory", ("reversible",), lambda g: memory(g)),
        ("reversible gradient error vs DTO", ("reversible",), lambda g: ours(g["grad_abs_error_sum"])),
        ("continuous adjoint (OTD) gradient error vs DTO", ("adjoint",), lambda g: ours(g["grad_abs_error_sum"])),
    ]
    rows = []
    for name, methods, fn in specs:
        row = {"row": name}
        if "reversible" in methods and not frame.empty:
            couplings = sorted(frame.loc[frame["method"] == "reversible", "coupling"].dropna().unique())
            row["row"] += f" (ours: lambda={', '.join(f'{c:g}' for c in couplings) or '—'})"
        for t in ts:
            group = frame[frame["method"].isin(methods) & (frame["T"] == t) & (frame["status"] == "ok")] \
                if not frame.empty else frame
            row[f"{_t_label(t)} — ours"] = fn(group) if len(group) else "—"
            row[f"{_t_label(t)} — {KIND}"] = ref_cell(ref, name, _t_label(t), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def time_length(row: pd.Series) -> float:
    """T of a node_regression run, from its resolved config."""
    config = Path(row["run_dir"]) / ".hydra" / "config.yaml"
    if not config.exists():
        return math.nan
    from omegaconf import OmegaConf

    return float(OmegaConf.load(config).task.time_length)


def recomputed_per_step(group: pd.DataFrame) -> float:
    """Steps the backward pass recomputed per step (its backward steps less the forward ones, per forward step)."""
    fwd = pd.to_numeric(group["fwd_steps"], errors="coerce")
    bwd = pd.to_numeric(group["bwd_steps"], errors="coerce")
    return float(((bwd - fwd) / fwd).mean())


def break_even(points: list[tuple[float, float]], reversible: float, steps: int) -> float:
    """r* of one column from its own cells: fit seconds = A + b R over the checkpointing cells (R = recomputed
    steps; A holds n (B + GV) and the iteration's other costs, b = B), then r* = (T_reversible - A) / (b n): the
    recomputations per step above which reversible is the faster (the bench's cost model, fitted instead of timed
    piece by piece). NaN when the cells cannot fit it (fewer than two distinct R, or b <= 0)."""
    if len({r for r, _ in points}) < 2 or not math.isfinite(reversible):
        return math.nan
    b, a = np.polyfit([r for r, _ in points], [t for _, t in points], 1)
    return (reversible - a) / (b * steps) if b > 0 else math.nan


def table_complexity(root: Path) -> pd.DataFrame:
    """Rows: reversible, then checkpointing with 2, 4, 8 checkpoints under both schedules; per step count: our
    seconds per iteration, the measured recomputations per step (R/n) and the authors' seconds per gradient; the
    last row is r* of each column (the model: reversible is faster where R/n > r*)."""
    frame = load(root / "complexity")
    ref = reference("complexity")
    if not frame.empty:
        frame = frame.assign(T=[time_length(r) for _, r in frame.iterrows()])
    ts = sorted(frame["T"].dropna().unique()) if not frame.empty else [float(t) for t in range(1, 11)]
    labels = [REVERSIBLE] + [checkpoint_label(k, schedule) for k in (2, 4, 8) for schedule in ("online", "offline")]
    rows = {label: {"row": label} for label in labels}
    r_star = {"row": "r* (fitted to this column's cells: reversible faster where R/n > r*)"}
    for t in ts:
        steps = round(t / 0.01)
        mine, recomputed, theirs = (f"{steps} steps — ours [s/iteration]", f"{steps} steps — R/n",
                                    f"{steps} steps — {KIND} [s/gradient]")
        means, points = {}, []
        for label in labels:
            group = frame[(frame["label"] == label) & (frame["T"] == t) & (frame["status"] == "ok")] \
                if not frame.empty else frame
            row = rows[label]
            row[mine] = ours(group["seconds_per_iter"]) if len(group) else "—"
            r = recomputed_per_step(group) if len(group) and label != REVERSIBLE else math.nan
            row[recomputed] = "—" if math.isnan(r) else f"{r:.2f}"
            mean = float(pd.to_numeric(group["seconds_per_iter"], errors="coerce").mean()) if len(group) else math.nan
            means[label] = mean
            if label != REVERSIBLE and math.isfinite(mean) and math.isfinite(r):
                points.append((r * steps, mean))
            authors = authors_row(label)
            row[theirs] = ref_cell(ref, authors, f"{steps} steps (T={t:g})", 3)
        value = break_even(points, means[REVERSIBLE], steps)
        r_star[mine], r_star[recomputed], r_star[theirs] = "—", ("—" if math.isnan(value) else f"{value:.2f}"), ""
    return pd.DataFrame([*rows.values(), r_star])


def table_convergence(root: Path) -> pd.DataFrame:
    path = root / "convergence" / "convergence.json"
    if not path.exists():
        return pd.DataFrame([{"row": "not run", "base scheme slope": "—", "reversible slope": "—"}])
    data = json.loads(path.read_text())
    rows = {}
    for r in data["rows"]:
        entry = rows.setdefault(r["scheme"], {"row": r["scheme"], "order": r.get("order", "—")})
        entry[f"{r['method']} scheme slope" if r["method"] == "base" else "reversible slope"] = f"{r['slope']:.2f}"
        entry[f"{r['method']} error at dt=2^-4"] = f"{r['error'][-1]:.2e}"
    table = pd.DataFrame(list(rows.values()))
    table[f"slope — {KIND}"] = "— (figure only; no numbers found)"
    return table


TABLES: dict[str, tuple[str, Callable[[Path], pd.DataFrame]]] = {
    "grad_error": ("v1 — gradient error and memory against the integration length (scalar neural ODE, midpoint, "
                   "h = 0.01; memory: ours graph/peak MiB vs authors' nvidia-smi MB; error: sum |g - g_DTO|)",
                   table_grad_error),
    "cnf": ("v1 — CNF on two moons (memory: ours graph/peak MiB vs authors' peak GPU GB; best training NLL)",
            table_cnf),
    "complexity": ("v2 — cost of one gradient against the number of steps, reversible against checkpointing under "
                   "both schedules (online: the authors' baseline, diffrax's RecursiveCheckpointAdjoint; offline: "
                   "binomial). Ours: seconds per training iteration and the recomputed steps per step R/n; r*: the "
                   "cost model fitted to each column; `make bench` has the per-gradient ratios", table_complexity),
    "convergence": ("v2 — convergence order on y' = 0.5 y, T = 5, dt = 2^0 .. 2^-4 (log-log slope)",
                    table_convergence),
    "white_dwarf": ("v2 — white-dwarf equation (best training loss x1e-4, training runtime in minutes)",
                    table_white_dwarf),
    "oscillator": ("v2 — measured coupled oscillator (training runtime in minutes, best training loss x1e-3)",
                   table_oscillator),
    "pendulum": ("v2 — measured double pendulum, adaptive Bosh3 (runtime in minutes, best loss x1e-3, accepted steps)",
                 table_pendulum),
}


def render(root: Path) -> str:
    parts = [f"# McCallum & Foster 2024, reversible solvers — reproduced from {root}", "",
             f"Columns marked \"{KIND}\": statistics computed from the authors' committed raw result logs (mean ± "
             "population std), not read from the paper's PDF. Ours: mean ± population std over seeds (n = runs).",
             ""]
    for title, fn in TABLES.values():
        parts += [f"## {title}", "", fn(root).to_markdown(index=False), ""]
    cde = root / "cde"
    parts += ["## v1 — neural CDE on CharacterTrajectories", "",
              "not run: no runs in " + str(cde) if not cde.exists() else
              per_method_table(load(cde), "neural_cde", {"midpoint": "midpoint", "rk4": "rk4", "dopri5": "dopri5"},
                               [DTO, REVERSIBLE],
                               [("peak GPU memory", "memory", memory, 4),
                                ("best test accuracy", "test accuracy", lambda g: ours(g["metric_value"]), 4)],
                               ).to_markdown(index=False), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs/reversible/paper"))
    args = parser.parse_args(argv)
    if not args.runs_dir.exists():
        print(f"{args.runs_dir} does not exist; run `make reproduce-reversible SCALE=...` first", file=sys.stderr)
        return 1
    text = render(args.runs_dir)
    (args.runs_dir / "tables.md").write_text(text)
    print(text)
    print(f"(written to {args.runs_dir / 'tables.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
