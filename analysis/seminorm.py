"""`python -m analysis.seminorm RUNS_DIR`: the seminorm paper's tables from the run directories below RUNS_DIR.

One table per experiment of Kidger, Chen & Lyons (2021) — neural CDE (Speech Commands), CNF (Table 2), Symplectic
ODE-Net (acrobot) — with one row per data set x protocol x tolerance x norm (x backward-tolerance factor): the test
metric (mean ± std over seeds), the backward NFE under each count (`COUNTS`: every training step; the paper's BNFE,
the training set's backward NFE summed over the metric passes of protocol=authors; the validation passes; the final
test pass; held-out batches of protocol=harness), each with its change against the paper's default norm, the training
time, and the published value beside each reproduced one. Published values come from analysis/reference/seminorm.csv
and carry their kind: the paper's result tables were NOT found, so most cells say "not found"; the Speech Commands
accuracies and NFE of the authors' Aug 2020 draft are shown, labelled as an UNPUBLISHED DRAFT. The "default norm" of
the paper is torchdiffeq 0.1.x's (`paper_default`); `default` (torchdiffeq 0.2.x) rows appear too when a sweep ran
them. The acrobot table ends with the finding about the authors' as-run acrobot norm (`ACROBOT_FOOTNOTE`). Below the
tables: per count, the seminorm's median and maximum reduction over the rows where the comparison measures the
seminorm (`comparable`, which names the rows it leaves out and why), beside the paper's headline (40% median, 62%).
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
    "authors_acrobot": "the authors' as-run acrobot norm (NOT a seminorm)",
}
# The backward counts of a row, each a column of `summarise`'s result: (column, what it counts).
COUNTS = (
    ("bwd_total", "training steps: backward NFE summed over every training step"),
    ("pass_bnfe", "the paper's BNFE: the training set's backward NFE summed over the metric passes (protocol=authors)"),
    ("pass_val", "validation set's backward NFE summed over the metric passes (what the authors' figure plots)"),
    ("final_test", "backward NFE of the final pass over the test set (the model the run ends with)"),
    ("heldout_total", "backward NFE of one held-out batch per evaluation, summed (protocol=harness)"),
)
ACROBOT_FOOTNOTE = (
    "Finding (acrobot): the authors' acrobot \"seminorm\" (models/symode.py) sizes its slices of the adjoint state by "
    "the whole observed window (window × state size) instead of the state, so it measures about RMS(y)/√window "
    "and acts as the default norm with backward tolerances √window times looser (the ×√window row takes the same "
    "steps): its first backward step then covers a whole 0.05 s interval, 56 instead of 98 backward NFE per batch "
    "at the paper's sizes. A genuine seminorm (ours) changes nothing here, because the error control never binds on "
    "these intervals: each costs 2 initial-step evaluations + 2 dopri5 steps whatever the norm."
)


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
    "bwd NFE, training steps: backward-pass function evaluations summed over every training step of a run (each "
    "step's count is in its metrics log). mean ± std over seeds.",
    "BNFE, metric passes (train): the paper's count (the authors' parse_results.py): the training set's backward NFE "
    "summed over the metric passes (after the first epoch, every 10 epochs and after the last; their number in "
    "brackets), protocol=authors only. 'val passes' sums the validation set's over the same passes (the authors' "
    "README figure plots them per pass); 'final test pass' is one forward+backward pass over the test set with the "
    "model the run ends with (the best-train-loss one under protocol=authors).",
    "bwd NFE (held-out, Σ evals): backward NFE of one forward+backward pass on a held-out batch (validation set "
    "where the data has one, else test) at each evaluation (every train.eval_every steps and at the end), summed "
    "over a run's evaluations, whose number is in brackets — the analogue of the authors' sum of periodic "
    "measurements; the figure plots them over training.",
    "Δ: change of the row's count against the default norm (paper_default) of the same data, protocol and forward "
    "and backward tolerances; negative = fewer. Rows with backward tolerances ×k compare with the default norm at "
    "the forward tolerances.",
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


def tolerance_of(text: str) -> tuple[float, float] | None:
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
        tolerance = tolerance_of(str(row["table"]))
        if tolerance and math.isclose(tolerance[0], rtol) and math.isclose(tolerance[1], atol):
            std = "" if pd.isna(row["std"]) else f" ± {row['std']:.3g}"
            kind = "UNPUBLISHED DRAFT" if row["kind"] == "unpublished draft" else row["kind"]
            return f"{row['value']:g}{std} ({kind})"
    return "not found"


def _ratio(frame: pd.DataFrame) -> pd.Series:
    """Backward tolerance over forward tolerance (method.adjoint_rtol / rtol), 1 where the run records none."""
    ratio = pd.to_numeric(_column(frame, "adjoint_rtol"), errors="coerce") / pd.to_numeric(frame["rtol"],
                                                                                           errors="coerce")
    return ratio.fillna(1.0).round(3)


KEYS = ["task", "data", "protocol", "rtol", "atol", "norm", "bwd_tol"]


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per task x data set x protocol x tolerances x norm x backward-tolerance factor (seeds pooled; adjoint
    runs only), raw numbers: for each backward count of `COUNTS` its mean and std over seeds and its change against
    the default norm of the same cell."""
    frame = frame.copy()
    frame = frame[_column(frame, "method") == "adjoint"]
    if frame.empty:
        return pd.DataFrame()
    frame["data"] = _column(frame, "dataset").map(short_dataset)
    frame["protocol"] = _column(frame, "protocol").fillna("harness")
    frame["bwd_tol"] = _ratio(frame)
    frame["bwd_total"] = _column(frame, "bwd_nfe") * _column(frame, "iterations")
    frame["heldout_total"], frame["evaluations"] = zip(*(_heldout_sum(run_dir) for run_dir in frame["run_dir"]))
    frame["fwd_total"] = _column(frame, "fwd_nfe") * _column(frame, "iterations")
    frame["pass_bnfe"] = _column(frame, "pass_train_bwd_nfe")
    frame["pass_val"] = _column(frame, "pass_val_bwd_nfe")
    frame["final_test"] = _column(frame, "final_test_bwd_nfe")
    rows = []
    for values, group in frame.groupby(KEYS, sort=True, dropna=False):
        ok = group[group["status"] == "ok"]
        failed = group[group["status"] != "ok"]
        row = {
            **dict(zip(KEYS, values)),
            "seeds_ok": len(ok),
            "seeds": len(group),
            "status": "ok" if failed.empty else "; ".join(f"{s} x{n}" for s, n in failed["status"].value_counts()
                                                            .items()),
            "metric": str(_column(group, "metric").dropna().iloc[0]) if _column(group, "metric").notna().any()
            else "metric",
            "metric_mean": _mean(_column(ok, "metric_value")),
            "metric_std": _std(_column(ok, "metric_value")),
            "fwd_total_mean": _mean(ok["fwd_total"]),
            "evaluations": _mean(ok["evaluations"]),
            "metric_passes": _mean(_column(ok, "metric_passes")),
            "train_seconds_mean": _mean(_column(ok, "train_seconds")),
            "train_seconds_std": _std(_column(ok, "train_seconds")),
            "iterations": _mean(_column(ok, "iterations")),
        }
        for count, _ in COUNTS:
            row[f"{count}_mean"], row[f"{count}_std"] = _mean(ok[count]), _std(ok[count])
        rows.append(row)
    summary = pd.DataFrame(rows)
    for count, _ in COUNTS:
        summary[f"{count}_change_pct"] = [_change(summary, row, f"{count}_mean") for _, row in summary.iterrows()]
    summary["time_change_pct"] = [_change(summary, row, "train_seconds_mean") for _, row in summary.iterrows()]
    # the names earlier tables used
    summary["bwd_change_pct"] = summary["bwd_total_change_pct"]
    summary["heldout_bwd_mean"], summary["heldout_bwd_std"] = summary["heldout_total_mean"], summary[
        "heldout_total_std"]
    summary["heldout_change_pct"] = summary["heldout_total_change_pct"]
    return summary


def _heldout_sum(run_dir: object) -> tuple[float, int]:
    """(held-out backward NFE summed over a run's evaluations, number of evaluations), from its metrics log."""
    counts = [row["heldout_bwd_nfe"] for row in eval_rows(read_metrics(str(run_dir)))
              if row.get("heldout_bwd_nfe") is not None]
    return (float(sum(counts)), len(counts)) if counts else (math.nan, 0)


CELL = ["task", "data", "protocol", "rtol", "atol"]


def baseline(summary: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """The default norm's row of the same cell, at the forward tolerances (backward tolerance factor 1)."""
    same = (summary[CELL] == row[CELL]).all(axis=1) & (summary["bwd_tol"] == 1.0)
    for norm in BASELINES:
        base = summary[same & (summary["norm"] == norm)]
        if not base.empty:
            return base.iloc[0]
    return None


def _change(summary: pd.DataFrame, row: pd.Series, column: str) -> float:
    base = baseline(summary, row)
    if base is None or (base["norm"] == row["norm"] and base["bwd_tol"] == row["bwd_tol"]):
        return math.nan
    if not base[column] > 0 or not row[column] >= 0:
        return math.nan
    return 100.0 * (row[column] - base[column]) / base[column]


def norm_label(norm: str, bwd_tol: float) -> str:
    label = NORM_LABELS.get(norm, norm)
    return label if bwd_tol == 1.0 else f"{label}, backward tolerances ×{bwd_tol:.3g}"


def _unit(values: pd.Series) -> tuple[float, str]:
    largest = pd.to_numeric(values, errors="coerce").max()
    if largest >= 1e6:
        return 1e6, " (10^6)"
    if largest >= 1e4:
        return 1e3, " (10^3)"
    return 1.0, ""


def render_table(summary: pd.DataFrame, table: PaperTable, reference: pd.DataFrame) -> str:
    rows = summary[summary["task"] == table.task].sort_values(
        ["data", "protocol", "rtol", "atol", "norm", "bwd_tol"], ascending=[True, True, False, False, True, True],
        key=norm_order)
    scale, unit = _unit(rows["bwd_total_mean"])
    digits = {"test accuracy (%)": 1, "test bits/dim": 3, "test MSE": 4}[table.metric_label]

    def count(column: str, divide: float = 1.0) -> list[str]:
        places = 2 if divide > 1 else 0
        return [_pm(m / divide, s / divide, places) for m, s in zip(rows[f"{column}_mean"], rows[f"{column}_std"])]

    shown = {
        "data": rows["data"],
        "protocol": rows["protocol"],
        "rtol": rows["rtol"].map(lambda v: f"{v:g}"),
        "atol": rows["atol"].map(lambda v: f"{v:g}"),
        "norm": [norm_label(n, r) for n, r in zip(rows["norm"], rows["bwd_tol"])],
        "runs": [f"{a}/{b}" for a, b in zip(rows["seeds_ok"], rows["seeds"])],
        table.metric_label: [_pm(m * table.metric_scale, s * table.metric_scale, digits)
                             for m, s in zip(rows["metric_mean"], rows["metric_std"])],
        "published": [published(reference, table, r, a, n, "test accuracy")
                      for r, a, n in zip(rows["rtol"], rows["atol"], rows["norm"])],
        f"bwd NFE, training steps{unit}": count("bwd_total", scale),
        "Δ steps": rows["bwd_total_change_pct"].map(_pct),
        "BNFE, metric passes (train)": [c + ("" if math.isnan(n) else f" ({n:g})")
                                        for c, n in zip(count("pass_bnfe"), rows["metric_passes"])],
        "Δ BNFE": rows["pass_bnfe_change_pct"].map(_pct),
        "bwd NFE, val passes": count("pass_val"),
        "Δ val": rows["pass_val_change_pct"].map(_pct),
        "bwd NFE, final test pass": count("final_test"),
        "Δ test": rows["final_test_change_pct"].map(_pct),
    }
    if rows["heldout_total_mean"].notna().any():
        shown["bwd NFE (held-out, Σ evals)"] = [_pm(m, s, 0) + ("" if math.isnan(n) or not n else f" ({n:g})")
                                                for m, s, n in zip(rows["heldout_total_mean"],
                                                                   rows["heldout_total_std"], rows["evaluations"])]
        shown["Δ held-out"] = rows["heldout_total_change_pct"].map(_pct)
    shown.update({
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
    text = f"### {table.title}\n\n{line}\n\n" + pd.DataFrame(shown).to_markdown(index=False) + "\n"
    if table.task == "acrobot":
        text += f"\n{ACROBOT_FOOTNOTE}\n"
    return text


def norm_order(column: pd.Series) -> pd.Series:
    """Sort key: the baseline norm first within a cell, then the seminorm, then the rest."""
    if column.name != "norm":
        return column
    order = {norm: i for i, norm in enumerate((*BASELINES, "seminorm", "authors_acrobot"))}
    return column.map(lambda n: order.get(n, len(order)))


# Which counts the headline takes medians of, and the name each has there.
HEADLINE_COUNTS = (("bwd_total", "training steps"), ("pass_bnfe", "the paper's BNFE (train-set metric passes)"),
                   ("pass_val", "val passes"), ("final_test", "final test pass"))


def comparable(summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rows whose backward-NFE change measures the seminorm: norm=seminorm at the forward tolerances, beside the
    paper's default norm of the same task, data, protocol and tolerances. Returns them and, for every other
    non-baseline row, why it is left out."""
    keep, left_out = [], []
    for index, row in summary.iterrows():
        where = f"{row['task']} / {row['data']} / {row['protocol']} / rtol={row['rtol']:g}: " \
                f"{norm_label(row['norm'], row['bwd_tol'])}"
        base = baseline(summary, row)
        if row["norm"] in BASELINES and row["bwd_tol"] == 1.0:
            continue
        if row["bwd_tol"] != 1.0:
            why = "a change of the backward tolerances, not of the norm"
        elif row["norm"] != "seminorm":
            why = ("not a seminorm: its saving comes from slices that loosen the tolerances"
                   if row["norm"] == "authors_acrobot" else "another norm, not the paper's comparison")
        elif base is None or base["norm"] != "paper_default":
            why = "no paper_default row of the same cell to compare with"
        else:
            keep.append(index)
            continue
        left_out.append(f"{where} ({why})")
    return summary.loc[keep], left_out


def headline(summary: pd.DataFrame, reference: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """Backward-NFE reduction of the seminorm per comparable row (`comparable`), per count: median and maximum over
    rows, beside the published headline."""
    semi, left_out = comparable(summary)
    numbers: dict[str, float] = {"rows": float(len(semi))}
    abstract = reference[reference["table"] == "abstract"]

    def paper(row: str) -> str:
        hit = abstract[abstract["row"] == row]
        return f"{hit['value'].iloc[0]:g}% ({hit['kind'].iloc[0]}, abstract)" if len(hit) else "not found"

    lines = [
        "### Headline: backward-NFE reduction of the seminorm against the paper's default norm",
        "",
        "| count | rows | median reduction | max reduction | published median | published max |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for column, name in HEADLINE_COUNTS:
        reductions = -semi[f"{column}_change_pct"].dropna() + 0.0
        median = float(reductions.median()) if len(reductions) else math.nan
        largest = float(reductions.max()) if len(reductions) else math.nan
        numbers[f"median_{column}_reduction_pct"], numbers[f"max_{column}_reduction_pct"] = median, largest
        numbers[f"rows_{column}"] = float(len(reductions))
        lines.append(f"| {name} | {len(reductions)} | {_fmt_pct(median)} | {_fmt_pct(largest)} "
                     f"| {paper('median over experiments')} | {paper('best case')} |")
    # the names earlier callers used
    numbers["median_reduction_pct"] = numbers["median_bwd_total_reduction_pct"]
    numbers["max_reduction_pct"] = numbers["max_bwd_total_reduction_pct"]
    heldout = -semi["heldout_total_change_pct"].dropna()
    numbers["median_heldout_reduction_pct"] = float(heldout.median()) if len(heldout) else math.nan
    lines += [
        "",
        "Rows in the medians (seminorm vs the paper's default norm, same task, data, protocol and tolerances; "
        "reduction of the training steps' backward NFE): " + (", ".join(
            f"{r.task} / {r.data} / {r.protocol} / rtol={r.rtol:g}: {-r.bwd_total_change_pct + 0.0:.1f}%"
            for r in semi.itertuples()) or "none"),
        "",
        "Rows left out: " + ("; ".join(left_out) if left_out else "none"),
    ]
    return "\n".join(lines) + "\n", numbers


def _fmt_pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value + 0.0:.1f}%"


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
    backward NFE), `heldout` (an evaluation's forward+backward pass on a held-out batch), or `pass_train` /
    `pass_val` (a training-time metric pass over the whole train / val set, protocol=authors). Columns: task, data,
    rtol, atol, norm, seed, step, kind, bwd_nfe. Read from each run's result (identity) and metrics log (counts)."""
    columns = ["task", "data", "rtol", "atol", "norm", "seed", "step", "kind", "bwd_nfe"]
    results = load_results(runs_dir)
    rows = []
    if results.empty:
        return pd.DataFrame(columns=columns)
    for result in results[_column(results, "method") == "adjoint"].itertuples():
        identity = {"task": result.task, "data": short_dataset(getattr(result, "dataset", None)), "rtol": result.rtol,
                    "atol": result.atol, "norm": result.norm, "seed": result.seed}
        for row in read_metrics(result.run_dir):
            if "loss" in row and "bwd_nfe" in row:
                rows.append({**identity, "step": row["step"], "kind": "train", "bwd_nfe": row["bwd_nfe"]})
            elif row.get("heldout_bwd_nfe") is not None:
                rows.append({**identity, "step": row["step"], "kind": "heldout", "bwd_nfe": row["heldout_bwd_nfe"]})
            elif "pass" in row and not row.get("final") and row["pass"] in ("train", "val"):
                rows.append({**identity, "step": row["step"], "kind": f"pass_{row['pass']}",
                             "bwd_nfe": row["pass_bwd_nfe"]})
    return pd.DataFrame(rows, columns=columns)


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
