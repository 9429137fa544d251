"""`python -m analysis.table RUNS_DIR`: one comparison table of every run below RUNS_DIR.

Rows: task x solver x tolerances x method x norm (x device). Columns: the test metric as mean ± std over seeds,
mean forward / backward NFE per training iteration, backward NFE of one held-out forward+backward pass, seconds
per iteration (after warm-up), memory, and the backward-NFE change against the default-norm adjoint of the same
task, solver and tolerances. Failed runs are counted and named in the `status` column, never dropped.
Writes RUNS_DIR/table.csv (numbers) and RUNS_DIR/table.md (as printed).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from record import RESULT, load_results

KEYS = ["task", "solver", "rtol", "atol", "method", "norm", "device"]
BASELINE = {"method": "adjoint", "norm": "default"}
NOTES = [
    "fwd/bwd NFE: mean function evaluations per training iteration (forward pass / backward pass).",
    "held-out bwd NFE: one forward+backward pass on held-out data at the final evaluation.",
    "s/iter: mean wall time per training iteration after warm-up (CUDA-synchronised on GPU).",
    "graph MiB: memory autograd holds between forward and backward (saved tensors, one iteration); peak MiB: "
    "torch.cuda.max_memory_allocated over the training steps, CUDA runs only.",
    "Δ bwd NFE: change of backward NFE against the default-norm adjoint with the same task, solver and tolerances.",
]


def _mean(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _std(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.std(ddof=0)) if len(values) else math.nan


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([math.nan] * len(frame), index=frame.index)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell (seeds pooled), raw numbers."""
    frame = frame.copy()
    for key in KEYS:
        if key not in frame:
            frame[key] = None
    frame[KEYS] = frame[KEYS].astype(object).where(frame[KEYS].notna(), "-")
    rows = []
    for keys, group in frame.groupby(KEYS, sort=True, dropna=False):
        ok = group[group["status"] == "ok"]
        failed = group[group["status"] != "ok"]
        metric_names = _column(group, "metric").dropna()
        metric = str(metric_names.iloc[0]) if len(metric_names) else "metric"
        values = _column(ok, "metric_value")
        rows.append({
            **dict(zip(KEYS, keys)),
            "seeds_ok": len(ok),
            "seeds": len(group),
            "status": "ok" if failed.empty else "; ".join(
                f"{status} x{count}" for status, count in failed["status"].value_counts().items()
            ),
            "error": None if failed.empty else str(failed["error"].dropna().iloc[0]) if failed["error"].notna().any()
            else None,
            "metric": metric,
            "metric_mean": _mean(values),
            "metric_std": _std(values),
            "fwd_nfe": _mean(_column(ok, "fwd_nfe")),
            "bwd_nfe": _mean(_column(ok, "bwd_nfe")),
            "heldout_bwd_nfe": _mean(_column(ok, "heldout_bwd_nfe")),
            "seconds_per_iter": _mean(_column(ok, "seconds_per_iter")),
            "graph_mib": _mean(_column(ok, "graph_mib")),
            "peak_mib": _mean(_column(ok, "peak_cuda_mib")),
            "grad_rel_error": _mean(_column(ok, "grad_rel_error")),
        })
    table = pd.DataFrame(rows)
    table["bwd_nfe_change_pct"] = [_change(table, row) for _, row in table.iterrows()]
    return table


def _change(table: pd.DataFrame, row: pd.Series) -> float:
    cell = ["task", "solver", "rtol", "atol", "device"]
    same = (table[cell] == row[cell]).all(axis=1)
    base = table[same & (table["method"] == BASELINE["method"]) & (table["norm"] == BASELINE["norm"])]
    if base.empty or not base["bwd_nfe"].iloc[0] > 0 or not row["bwd_nfe"] > 0:
        return math.nan  # no baseline, or no backward evaluations to compare (direct backprop)
    return 100.0 * (row["bwd_nfe"] - base["bwd_nfe"].iloc[0]) / base["bwd_nfe"].iloc[0]


def _num(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _sig(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2g}"


def _short(error: object, width: int = 90) -> str:
    text = str(error)
    return text if len(text) <= width else text[: width - 1] + "…"


def render(table: pd.DataFrame) -> str:
    """The table as printed: formatted strings, failures named, a note per column group."""
    shown = pd.DataFrame({
        "task": table["task"],
        "solver": table["solver"],
        "rtol": table["rtol"].map(lambda v: v if isinstance(v, str) else f"{v:g}"),
        "method": table["method"],
        "norm": table["norm"],
        "device": table["device"],
        "runs ok": [f"{a}/{b}" for a, b in zip(table["seeds_ok"], table["seeds"])],
        "test metric": [
            "—" if math.isnan(m) else f"{name} {m:.4g} ± {s:.2g}"
            for name, m, s in zip(table["metric"], table["metric_mean"], table["metric_std"])
        ],
        "fwd NFE": table["fwd_nfe"].map(_num),
        "bwd NFE": table["bwd_nfe"].map(_num),
        "held-out bwd NFE": table["heldout_bwd_nfe"].map(_num),
        "s/iter": table["seconds_per_iter"].map(lambda v: _num(v, 4)),
        "graph MiB": table["graph_mib"].map(lambda v: _num(v, 2)),
        "peak MiB": table["peak_mib"].map(_num),
        "grad rel. error": table["grad_rel_error"].map(_sig),
        "Δ bwd NFE": [
            "baseline" if (m, n) == (BASELINE["method"], BASELINE["norm"]) and not math.isnan(c)
            else ("—" if math.isnan(c) else f"{c:+.1f}%")
            for m, n, c in zip(table["method"], table["norm"], table["bwd_nfe_change_pct"])
        ],
        "status": [s if s == "ok" else f"{s}: {_short(e)}" for s, e in zip(table["status"], table["error"])],
    })
    return shown.to_markdown(index=False) + "\n\n" + "\n".join(f"- {note}" for note in NOTES) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    args = parser.parse_args(argv)
    frame = load_results(args.runs_dir)
    if frame.empty:
        print(f"no {RESULT} below {args.runs_dir}", file=sys.stderr)
        return 1
    table = summarise(frame)
    text = render(table)
    table.to_csv(args.runs_dir / "table.csv", index=False)
    (args.runs_dir / "table.md").write_text(text)
    print(text)
    print(f"(written to {args.runs_dir / 'table.md'} and table.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
