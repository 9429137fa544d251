"""`python -m analysis.seminorm RUNS_DIR`: the seminorm paper's tables from the run directories below RUNS_DIR.

One table per experiment of Kidger, Chen & Lyons (2021) — neural CDE (Speech Commands), CNF (Table 2), Symplectic
ODE-Net (acrobot) — with one row per data set x tolerance x norm: the test metric (mean ± std over seeds), the
backward NFE, the training time, and the published value beside each reproduced one. Published values come from
analysis/reference/seminorm.csv and carry their kind: the paper's result tables were NOT found, so most cells say
"not found"; the Speech Commands accuracies and NFE of the authors' Aug 2020 draft are shown, labelled as an
UNPUBLISHED DRAFT. The "default norm" of the paper is torchdiffeq 0.1.x's (`paper_default`); `default`
(torchdiffeq 0.2.x) rows appear too when a sweep ran them. Below the tables: the backward-NFE reduction of the
seminorm per row and its median and maximum over rows, beside the paper's headline (40% median, 62% best).
Writes RUNS_DIR/seminorm_tables.md (as printed) and RUNS_DIR/seminorm_tables.csv (numbers).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.table import _column, _mean, _std
from record import RESULT, eval_rows, load_results, read_metrics

REFERENCE = Path(__file__).resolve().parent / "reference" / "seminorm.csv"
BASELINES = ("paper_default", "default")  # the paper's "default norm", then torchdiffeq 0.2.x's if that is all there is
NORM_LABELS = {
    "paper_default": "default norm (torchdiffeq 0.1.x, the paper's)",
    "default": "default norm (torchdiffeq 0.2.x)",
    "seminorm": "seminorm",
    "rms": "RMS norm",
}


@dataclass(frozen=True)
class PaperTable:
    task: str
    title: str
    metric_label: str
    metric_scale: float  # multiplies the recorded metric (accuracy in [0, 1] -> %)
    reference_experiment: str | None  # `experiment` of analysis/reference/seminorm.csv, when it has values
    paper_data: tuple[str, ...]  # short names of the paper's own data; anything else is a stand-in


TABLES = (
    PaperTable("speech_commands", "Neural CDE on Speech Commands (time series; table number not found)",
               "test accuracy (%)", 100.0, "neural_cde_speech_commands_UNPUBLISHED_DRAFT", ("Speech Commands v0.02",)),
    PaperTable("cnf_images", "Table 2: continuous normalising flows (FFJORD multiscale) on images",
               "test bits/dim", 1.0, None, ("MNIST", "CIFAR-10")),
    PaperTable("acrobot", "Symplectic ODE-Net on the acrobot (physical control; table number not found)",
               "test MSE", 1.0, None, ("acrobot simulated in code",)),
    PaperTable("uea_ncde", "Neural CDE on a UEA data set (not a table of the paper)", "test accuracy (%)", 100.0,
               None, ()),
)
NOTES = [
    "bwd NFE (training): backward-pass function evaluations summed over every training step of a run (each step's "
    "count is in its metrics log); the authors' parse_results.py instead sums a full pass over the training set "
    "every 10 epochs. mean ± std over seeds.",
    "bwd NFE (held-out, Σ evals): backward NFE of one forward+backward pass on a held-out batch (validation set "
    "where the data has one, else test) at each evaluation (every train.eval_every steps and at the end), summed "
    "over a run's evaluations, whose number is in brackets — the analogue of the authors' sum of periodic "
    "measurements; the figure plots them over training.",
    "Δ: change of the seminorm's backward NFE against the default norm (paper_default) of the same data and "
    "tolerances; negative = fewer.",
    "train s: wall time of the training steps (evaluations excluded).",
    "published: the value the paper reports for that cell; 'not found' where no published table was reachable "
    "(see analysis/reference/seminorm.csv and ../shared/reference/seminorm.md). 'UNPUBLISHED DRAFT' values come "
    "from the authors' Aug 2020 draft (commit 2ddcc00), not the published paper; its NFE are test-set backward NFE "
    "of the trained model (10^3), its times test-set forward+backward seconds.",
]


def load_reference(path: Path = REFERENCE) -> pd.DataFrame:
    reference = pd.read_csv(path)
    if "kind" not in reference:
        raise ValueError(f"{path} has no `kind` column: every published number must say what kind it is")
    return reference


def short_dataset(description: object) -> str:
    """'UEA JapaneseVowels, copy shipped ...; 270 train ...' -> 'UEA JapaneseVowels'."""
    if not isinstance(description, str) or not description:
        return "—"
    return description.split(";")[0].split(" (")[0].split(", ")[0]


def _pm(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f}"


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.1f}%"


def _tolerance_of(text: str) -> tuple[float, float] | None:
    """'... ATOL=1e-6 RTOL=1e-3)' -> (rtol, atol)."""
    atol, rtol = re.search(r"ATOL=([0-9.e-]+)", text), re.search(r"RTOL=([0-9.e-]+)", text)
    return (float(rtol.group(1)), float(atol.group(1))) if atol and rtol else None


def published(reference: pd.DataFrame, table: PaperTable, rtol: float, atol: float, norm: str, column: str) -> str:
    """The published value of one cell, labelled with its kind, or 'not found'."""
    if table.reference_experiment is None or norm not in ("paper_default", "seminorm"):
        return "not found"
    row_name = "default norm" if norm == "paper_default" else "seminorm"
    rows = reference[(reference["experiment"] == table.reference_experiment) & (reference["row"] == row_name)
                     & (reference["column"] == column)]
    for _, row in rows.iterrows():
        tolerance = _tolerance_of(str(row["table"]))
        if tolerance and math.isclose(tolerance[0], rtol) and math.isclose(tolerance[1], atol):
            std = "" if pd.isna(row["std"]) else f" ± {row['std']:.3g}"
            kind = "UNPUBLISHED DRAFT" if row["kind"] == "unpublished draft" else row["kind"]
            return f"{row['value']:g}{std} ({kind})"
    return "not found"


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per task x data set x tolerances x norm (seeds pooled; adjoint runs only), raw numbers."""
    frame = frame.copy()
    frame = frame[_column(frame, "method") == "adjoint"]
    if frame.empty:
        return pd.DataFrame()
    frame["data"] = _column(frame, "dataset").map(short_dataset)
    frame["bwd_total"] = _column(frame, "bwd_nfe") * _column(frame, "iterations")
    frame["heldout_total"], frame["evaluations"] = zip(*(_heldout_sum(run_dir) for run_dir in frame["run_dir"]))
    frame["fwd_total"] = _column(frame, "fwd_nfe") * _column(frame, "iterations")
    keys = ["task", "data", "rtol", "atol", "norm"]
    rows = []
    for values, group in frame.groupby(keys, sort=True, dropna=False):
        ok = group[group["status"] == "ok"]
        failed = group[group["status"] != "ok"]
        rows.append({
            **dict(zip(keys, values)),
            "seeds_ok": len(ok),
            "seeds": len(group),
            "status": "ok" if failed.empty else "; ".join(f"{s} x{n}" for s, n in failed["status"].value_counts()
                                                            .items()),
            "metric": str(_column(group, "metric").dropna().iloc[0]) if _column(group, "metric").notna().any()
            else "metric",
            "metric_mean": _mean(_column(ok, "metric_value")),
            "metric_std": _std(_column(ok, "metric_value")),
            "bwd_total_mean": _mean(ok["bwd_total"]),
            "bwd_total_std": _std(ok["bwd_total"]),
            "fwd_total_mean": _mean(ok["fwd_total"]),
            "heldout_bwd_mean": _mean(ok["heldout_total"]),
            "heldout_bwd_std": _std(ok["heldout_total"]),
            "evaluations": _mean(ok["evaluations"]),
            "train_seconds_mean": _mean(_column(ok, "train_seconds")),
            "train_seconds_std": _std(_column(ok, "train_seconds")),
            "iterations": _mean(_column(ok, "iterations")),
        })
    summary = pd.DataFrame(rows)
    summary["bwd_change_pct"] = [_change(summary, row, "bwd_total_mean") for _, row in summary.iterrows()]
    summary["heldout_change_pct"] = [_change(summary, row, "heldout_bwd_mean") for _, row in summary.iterrows()]
    summary["time_change_pct"] = [_change(summary, row, "train_seconds_mean") for _, row in summary.iterrows()]
    return summary


def _heldout_sum(run_dir: object) -> tuple[float, int]:
    """(held-out backward NFE summed over a run's evaluations, number of evaluations), from its metrics log."""
    counts = [row["heldout_bwd_nfe"] for row in eval_rows(read_metrics(str(run_dir)))
              if row.get("heldout_bwd_nfe") is not None]
    return (float(sum(counts)), len(counts)) if counts else (math.nan, 0)


def _baseline(summary: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    same = (summary[["task", "data", "rtol", "atol"]] == row[["task", "data", "rtol", "atol"]]).all(axis=1)
    for norm in BASELINES:
        base = summary[same & (summary["norm"] == norm)]
        if not base.empty:
            return base.iloc[0]
    return None


def _change(summary: pd.DataFrame, row: pd.Series, column: str) -> float:
    base = _baseline(summary, row)
    if base is None or base["norm"] == row["norm"] or not base[column] > 0 or not row[column] >= 0:
        return math.nan
    return 100.0 * (row[column] - base[column]) / base[column]


def _unit(values: pd.Series) -> tuple[float, str]:
    largest = pd.to_numeric(values, errors="coerce").max()
    if largest >= 1e6:
        return 1e6, " (10^6)"
    if largest >= 1e4:
        return 1e3, " (10^3)"
    return 1.0, ""


def render_table(summary: pd.DataFrame, table: PaperTable, reference: pd.DataFrame) -> str:
    rows = summary[summary["task"] == table.task].sort_values(
        ["data", "rtol", "atol", "norm"], ascending=[True, False, False, True], key=_norm_order)
    scale, unit = _unit(rows["bwd_total_mean"])
    digits = {"test accuracy (%)": 1, "test bits/dim": 3, "test MSE": 4}[table.metric_label]
    shown = pd.DataFrame({
        "data": rows["data"],
        "rtol": rows["rtol"].map(lambda v: f"{v:g}"),
        "atol": rows["atol"].map(lambda v: f"{v:g}"),
        "norm": rows["norm"].map(lambda n: NORM_LABELS.get(n, n)),
        "runs": [f"{a}/{b}" for a, b in zip(rows["seeds_ok"], rows["seeds"])],
        table.metric_label: [_pm(m * table.metric_scale, s * table.metric_scale, digits)
                             for m, s in zip(rows["metric_mean"], rows["metric_std"])],
        "published": [published(reference, table, r, a, n, "test accuracy")
                      for r, a, n in zip(rows["rtol"], rows["atol"], rows["norm"])],
        f"bwd NFE (training){unit}": [_pm(m / scale, s / scale, 2 if scale > 1 else 0)
                                      for m, s in zip(rows["bwd_total_mean"], rows["bwd_total_std"])],
        "Δ bwd NFE": rows["bwd_change_pct"].map(_pct),
        "bwd NFE (held-out, Σ evals)": [_pm(m, s, 0) + ("" if math.isnan(n) else f" ({n:g})")
                                        for m, s, n in zip(rows["heldout_bwd_mean"], rows["heldout_bwd_std"],
                                                           rows["evaluations"])],
        "Δ held-out": rows["heldout_change_pct"].map(_pct),
        "published bwd NFE": [published(reference, table, r, a, n, "backward NFE on test set")
                              for r, a, n in zip(rows["rtol"], rows["atol"], rows["norm"])],
        "train s": [_pm(m, s, 1) for m, s in zip(rows["train_seconds_mean"], rows["train_seconds_std"])],
        "Δ time": rows["time_change_pct"].map(_pct),
        "status": rows["status"],
    })
    data = sorted(set(rows["data"]))
    stand_ins = [d for d in data if d not in table.paper_data]
    line = f"data: {', '.join(data)}"
    if stand_ins and table.paper_data:
        which = "" if len(stand_ins) == len(data) else f" ({', '.join(stand_ins)})"
        line += (f" — offline STAND-IN{which} for the paper's {' / '.join(table.paper_data)}; published values "
                 f"refer to the paper's data")
    return f"### {table.title}\n\n{line}\n\n" + shown.to_markdown(index=False) + "\n"


def _norm_order(column: pd.Series) -> pd.Series:
    """Sort key: the baseline norm first within a cell, other columns as they are."""
    if column.name != "norm":
        return column
    order = {norm: i for i, norm in enumerate((*BASELINES, "seminorm"))}
    return column.map(lambda n: order.get(n, len(order)))


def headline(summary: pd.DataFrame, reference: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """Backward-NFE reduction of the seminorm per row, its median and maximum, beside the published headline."""
    semi = summary[(summary["norm"] == "seminorm") & summary["bwd_change_pct"].notna()]
    reductions = -semi["bwd_change_pct"]
    heldout = -semi["heldout_change_pct"].dropna()
    numbers = {
        "rows": float(len(reductions)),
        "median_reduction_pct": float(reductions.median()) if len(reductions) else math.nan,
        "max_reduction_pct": float(reductions.max()) if len(reductions) else math.nan,
        "median_heldout_reduction_pct": float(heldout.median()) if len(heldout) else math.nan,
    }
    abstract = reference[reference["table"] == "abstract"]

    def paper(row: str) -> str:
        hit = abstract[abstract["row"] == row]
        return f"{hit['value'].iloc[0]:g}% ({hit['kind'].iloc[0]}, abstract)" if len(hit) else "not found"

    lines = [
        "### Headline: backward-NFE reduction of the seminorm (training, all rows)",
        "",
        "| rows | median reduction | published median | max reduction | published max | median held-out reduction |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {len(reductions)} | {_fmt_pct(numbers['median_reduction_pct'])} | {paper('median over experiments')} "
        f"| {_fmt_pct(numbers['max_reduction_pct'])} | {paper('best case')} "
        f"| {_fmt_pct(numbers['median_heldout_reduction_pct'])} |",
        "",
        "Per row (reduction of training bwd NFE): " + (", ".join(
            f"{r.task} / {r.data} / rtol={r.rtol:g}: {-r.bwd_change_pct + 0.0:.1f}%" for r in semi.itertuples())
            or "none"),
    ]
    return "\n".join(lines) + "\n", numbers


def _fmt_pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f}%"


def render(summary: pd.DataFrame, reference: pd.DataFrame) -> str:
    parts = [render_table(summary, table, reference) for table in TABLES if (summary["task"] == table.task).any()]
    others = sorted(set(summary["task"]) - {t.task for t in TABLES})
    if others:
        parts.append(f"(runs of tasks without a seminorm table, not shown: {', '.join(others)})\n")
    parts.append(headline(summary, reference)[0])
    parts.append("\n".join(f"- {note}" for note in NOTES) + "\n")
    return "\n".join(parts)


def load_curves(runs_dir: str | Path) -> pd.DataFrame:
    """Backward NFE over training, one row per (adjoint run, logged step): `kind` is `train` (that training step's
    backward NFE) or `heldout` (an evaluation's forward+backward pass on held-out data). Columns: task, data, rtol,
    atol, norm, seed, step, kind, bwd_nfe. Read from each run's result (identity) and metrics log (counts)."""
    results = load_results(runs_dir)
    rows = []
    if results.empty:
        return pd.DataFrame(columns=["task", "data", "rtol", "atol", "norm", "seed", "step", "kind", "bwd_nfe"])
    for result in results[_column(results, "method") == "adjoint"].itertuples():
        identity = {"task": result.task, "data": short_dataset(getattr(result, "dataset", None)), "rtol": result.rtol,
                    "atol": result.atol, "norm": result.norm, "seed": result.seed}
        for row in read_metrics(result.run_dir):
            if "loss" in row and "bwd_nfe" in row:
                rows.append({**identity, "step": row["step"], "kind": "train", "bwd_nfe": row["bwd_nfe"]})
            elif row.get("heldout_bwd_nfe") is not None:
                rows.append({**identity, "step": row["step"], "kind": "heldout", "bwd_nfe": row["heldout_bwd_nfe"]})
    return pd.DataFrame(rows, columns=["task", "data", "rtol", "atol", "norm", "seed", "step", "kind", "bwd_nfe"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    args = parser.parse_args(argv)
    frame = load_results(args.runs_dir)
    summary = summarise(frame) if not frame.empty else pd.DataFrame()
    if summary.empty:
        print(f"no adjoint runs (no {RESULT}) below {args.runs_dir}", file=sys.stderr)
        return 1
    text = render(summary, load_reference())
    summary.to_csv(args.runs_dir / "seminorm_tables.csv", index=False)
    (args.runs_dir / "seminorm_tables.md").write_text(text)
    print(text)
    print(f"(written to {args.runs_dir / 'seminorm_tables.md'} and seminorm_tables.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
