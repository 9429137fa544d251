"""The seminorm paper's report sections, from analysis.seminorm's summary (one row per data set x tolerances x
norm, seeds pooled) and analysis/reference/seminorm.csv.

Compared per row: the test metric (`metric`), the held-out backward NFE (`count`), and on seminorm rows its change
against the default norm of the same cell (`change`) and its training time over the default norm's (`ratio`: times
only as ratios). The only per-row reference values are the authors' Aug 2020 draft's (Speech Commands, rtol 1e-3 /
atol 1e-6, labelled `unpublished draft`); the headline section sets our median and maximum reduction over rows beside
the abstract's 40% / 62% (`paper`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis import seminorm
from analysis.report.model import PaperReport, Row, Section, percent_change, reference_ratio, scale_facts
from analysis.verdict import Comparison, Reference, Value, ratio
from record import load_results

TITLE = "Kidger, Chen & Lyons 2021 — “Hey, that's not an ODE”: Faster ODE Adjoints via Seminorms"
DOC = "docs/seminorm.md"
DRAFT_ROWS = {"paper_default": "default norm", "seminorm": "seminorm"}  # our norm -> the draft's row


def draft_value(reference: pd.DataFrame, table: seminorm.PaperTable, rtol: float, atol: float, norm: str,
                column: str) -> Reference | None:
    """The reference of one cell (value, std, kind), or None where the CSV has none for it."""
    if table.reference_experiment is None or norm not in DRAFT_ROWS:
        return None
    rows = reference[(reference["experiment"] == table.reference_experiment)
                     & (reference["row"] == DRAFT_ROWS[norm]) & (reference["column"] == column)]
    for _, row in rows.iterrows():
        tolerance = seminorm._tolerance_of(str(row["table"]))
        if tolerance and math.isclose(tolerance[0], rtol) and math.isclose(tolerance[1], atol):
            std = None if pd.isna(row["std"]) else float(row["std"])
            return Reference(Value(float(row["value"]), std), str(row["kind"]), f"{row['source']} ({row['unit']})")
    return None


def _draft_ratio(first: Reference | None, second: Reference | None, percent: bool = False) -> Reference | None:
    """The draft's seminorm row over its default-norm row (as a % change where `percent`)."""
    quotient = reference_ratio(first, second, f"{first.kind} (from its two rows)" if first else "")
    if quotient is None or not percent:
        return quotient
    return Reference(percent_change(quotient.value), quotient.kind, quotient.source)


def _ours_change(row: pd.Series, base: pd.Series, column: str) -> Value | None:
    return percent_change(ratio(Value(row[f"{column}_mean"], row[f"{column}_std"]),
                                Value(base[f"{column}_mean"], base[f"{column}_std"])))


def table_row(summary: pd.DataFrame, row: pd.Series, table: seminorm.PaperTable, reference: pd.DataFrame,
              facts: set[str]) -> Row:
    """One summary row's cells and comparisons (the change and time ratio only on seminorm rows)."""
    def find(column: str, norm: str = row["norm"]) -> Reference | None:
        return draft_value(reference, table, row["rtol"], row["atol"], norm, column)

    metric = None if math.isnan(row["metric_mean"]) else Value(
        row["metric_mean"] * table.metric_scale, row["metric_std"] * table.metric_scale, int(row["seeds_ok"]))
    heldout = None if math.isnan(row["heldout_bwd_mean"]) else Value(
        row["heldout_bwd_mean"] / 1000, row["heldout_bwd_std"] / 1000, int(row["seeds_ok"]))
    comparisons = [Comparison(table.metric_label, "metric", metric, find("test accuracy")),
                   Comparison("held-out bwd NFE (10^3)", "count", heldout, find("backward NFE on test set"))]
    base = seminorm._baseline(summary, row)
    if row["norm"] == "seminorm" and base is not None and base["norm"] != "seminorm":
        comparisons += [
            Comparison("Δ held-out bwd NFE (%)", "change", _ours_change(row, base, "heldout_bwd"),
                       _draft_ratio(find("backward NFE on test set"), find("backward NFE on test set", base["norm"]),
                                    percent=True)),
            Comparison("train time / default norm's", "ratio",
                       ratio(Value(row["train_seconds_mean"], row["train_seconds_std"]),
                             Value(base["train_seconds_mean"], base["train_seconds_std"])),
                       _draft_ratio(find("forward+backward time on test set"),
                                    find("forward+backward time on test set", base["norm"]))),
        ]
    stand_in = {"stand-in data"} if table.paper_data and row["data"] not in table.paper_data else set()
    cells = {"data": row["data"], "rtol": f"{row['rtol']:g}", "atol": f"{row['atol']:g}",
             "norm": seminorm.NORM_LABELS.get(row["norm"], row["norm"]),
             "runs": f"{row['seeds_ok']}/{row['seeds']}", "status": row["status"]}
    return Row(f"{row['data']} / rtol={row['rtol']:g} / {row['norm']}", cells, comparisons,
               frozenset(facts | stand_in))


def table_rows(summary: pd.DataFrame, frame: pd.DataFrame, table: seminorm.PaperTable,
               reference: pd.DataFrame) -> list[Row]:
    rows = summary[summary["task"] == table.task].sort_values(
        ["data", "rtol", "atol", "norm"], ascending=[True, False, False, True], key=seminorm._norm_order)
    facts = scale_facts(frame[frame["task"] == table.task])
    return [table_row(summary, row, table, reference, facts) for _, row in rows.iterrows()]


def reductions(summary: pd.DataFrame) -> list[Value]:
    """The seminorm's training backward-NFE reduction (%) of every row that has a default-norm baseline, each with
    its seeds' spread (propagated from both rows' counts), smallest first."""
    out = []
    for _, row in summary[summary["norm"] == "seminorm"].iterrows():
        base = seminorm._baseline(summary, row)
        change = _ours_change(row, base, "bwd_total") if base is not None and base["norm"] != "seminorm" else None
        if change is not None:
            out.append(Value(-change.mean, change.std))
    return sorted(out, key=lambda v: v.mean)


def median(values: list[Value]) -> Value:
    """The median row, or the mean of the two middle rows, with the spread of the row(s) it is made of: a median
    over experiments is as noisy as the measurements it picks, not as spread as the experiments."""
    middle = values[(len(values) - 1) // 2: len(values) // 2 + 1]
    mean = sum(v.mean for v in middle) / len(middle)
    spread = math.sqrt(sum((v.std or 0.0) ** 2 for v in middle)) / len(middle)
    return Value(mean, spread, len(values))


def headline_rows(summary: pd.DataFrame, frame: pd.DataFrame, reference: pd.DataFrame) -> list[Row]:
    """Our median and maximum backward-NFE reduction over rows beside the abstract's 40% / 62%."""
    rows = reductions(summary)
    abstract = reference[reference["table"] == "abstract"]
    facts = frozenset(scale_facts(frame))
    out = []
    for name, row_name, pick in (("median reduction", "median over experiments", median),
                                 ("max reduction", "best case", lambda v: Value(v[-1].mean, v[-1].std, len(v)))):
        hit = abstract[abstract["row"] == row_name]
        ref = Reference(Value(float(hit["value"].iloc[0])), str(hit["kind"].iloc[0]), str(hit["source"].iloc[0])) \
            if len(hit) else None
        out.append(Row(name, {"headline": name, "rows": str(len(rows))},
                       [Comparison("training bwd NFE reduction (%)", "change", pick(rows) if rows else None, ref)],
                       facts))
    return out


def build(root: Path) -> PaperReport:
    frame = load_results(root)
    summary = seminorm.summarise(frame) if not frame.empty else pd.DataFrame()
    reference = seminorm.load_reference()
    sections = []
    if not summary.empty:
        frame = frame[frame.get("method") == "adjoint"]
        for table in seminorm.TABLES:
            if (summary["task"] == table.task).any():
                sections.append(Section(table.task, table.title, table_rows(summary, frame, table, reference),
                                        "held-out bwd NFE: Σ over a run's evaluations of one forward+backward pass on "
                                        "a held-out batch, in thousands as the draft states its test-set counts."))
        sections.append(Section("headline", "Headline: backward-NFE reduction of the seminorm (training, all rows)",
                                headline_rows(summary, frame, reference),
                                "Ours: the median and the maximum over the seminorm rows above, σ the seeds' "
                                "spread of the row(s) picked."))
    printed = seminorm.render(summary, reference) if not summary.empty else f"no adjoint runs below {root}"
    return PaperReport("seminorm", TITLE, DOC, sections, printed)
