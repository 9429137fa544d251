"""The seminorm paper's report sections, from analysis.seminorm's summary (one row per data set x tolerances x
norm, seeds pooled) and analysis/reference/seminorm.csv.

Compared per row: the test metric (`metric`), the backward NFE of a test pass (`count`: the final test pass where the
summary has it, else the held-out batches), and on seminorm rows that count's change against the default norm of the
same cell (`change`) and the training time over the default norm's (`ratio`: times only as ratios). The only per-row
reference values are the authors' Aug 2020 draft's (Speech Commands, rtol 1e-3 / atol 1e-6, labelled `unpublished
draft`); the headline section sets our median and maximum reduction over rows beside the abstract's 40% / 62%
(`paper`).
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
        tolerance = seminorm.tolerance_of(str(row["table"]))
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
    if base is None:
        return None
    return percent_change(ratio(Value(row[f"{column}_mean"], row[f"{column}_std"]),
                                Value(base[f"{column}_mean"], base[f"{column}_std"])))


# Our count beside the draft's "backward NFE on test set" (one pass over the test set with the trained model): the
# final test pass where the summary has it, else the held-out batches summed over the evaluations.
TEST_COUNTS = (("final_test", "final test-pass bwd NFE (10^3)"), ("heldout_bwd", "held-out bwd NFE (10^3)"))


COUNT_NOTES = (  # what each of TEST_COUNTS counts, in its order
    "final test-pass bwd NFE: one forward+backward pass over the test set with the model the run ends with, in "
    "thousands, as the draft states its test-set counts.",
    "held-out bwd NFE: Σ over a run's evaluations of one forward+backward pass on a held-out batch, in thousands, as "
    "the draft states its test-set counts.",
)


def test_count(row: pd.Series) -> tuple[str, str]:
    """(summary column stem, label) of the row's count compared with the draft's test-set count: the first of
    TEST_COUNTS its runs recorded (runs made before the final test pass was recorded have only the held-out sum)."""
    for column, label in TEST_COUNTS:
        if pd.notna(row.get(f"{column}_mean")):
            return column, label
    return TEST_COUNTS[-1]


def _norm_label(row: pd.Series) -> str:
    return seminorm.norm_label(row["norm"], row.get("bwd_tol", 1.0))


def _thousands(row: pd.Series, column: str) -> Value | None:
    mean = row.get(f"{column}_mean", math.nan)
    if mean is None or math.isnan(mean):
        return None
    return Value(mean / 1000, row[f"{column}_std"] / 1000, int(row["seeds_ok"]))


def table_row(summary: pd.DataFrame, row: pd.Series, table: seminorm.PaperTable, reference: pd.DataFrame,
              facts: set[str]) -> Row:
    """One summary row's cells and comparisons (the change and time ratio only on seminorm rows at the forward
    tolerances, beside the default norm of the same cell)."""
    def find(column: str, norm: str = row["norm"]) -> Reference | None:
        return draft_value(reference, table, row["rtol"], row["atol"], norm, column)

    column, label = test_count(row)
    metric = None if math.isnan(row["metric_mean"]) else Value(
        row["metric_mean"] * table.metric_scale, row["metric_std"] * table.metric_scale, int(row["seeds_ok"]))
    comparisons = [Comparison(table.metric_label, "metric", metric, find("test accuracy")),
                   Comparison(label, "count", _thousands(row, column), find("backward NFE on test set"))]
    base = seminorm.baseline(summary, row)
    if row["norm"] == "seminorm" and row.get("bwd_tol", 1.0) == 1.0 and base is not None \
            and base["norm"] != "seminorm":
        comparisons += [
            Comparison(f"Δ {label.removesuffix(' (10^3)')} (%)", "change", _ours_change(row, base, column),
                       _draft_ratio(find("backward NFE on test set"), find("backward NFE on test set", base["norm"]),
                                    percent=True)),
            Comparison("train time / default norm's", "ratio",
                       ratio(Value(row["train_seconds_mean"], row["train_seconds_std"]),
                             Value(base["train_seconds_mean"], base["train_seconds_std"])),
                       _draft_ratio(find("forward+backward time on test set"),
                                    find("forward+backward time on test set", base["norm"]))),
        ]
    stand_in = {"stand-in data"} if table.paper_data and row["data"] not in table.paper_data else set()
    cells = {"data": row["data"], **({"protocol": row["protocol"]} if "protocol" in row else {}),
             "rtol": f"{row['rtol']:g}", "atol": f"{row['atol']:g}", "norm": _norm_label(row),
             "runs": f"{row['seeds_ok']}/{row['seeds']}", "status": row["status"]}
    name = " / ".join([row["data"], *([row["protocol"]] if "protocol" in row else []), f"rtol={row['rtol']:g}",
                       row["norm"] + (f" x{row['bwd_tol']:g}" if row.get("bwd_tol", 1.0) != 1.0 else "")])
    return Row(name, cells, comparisons, frozenset(facts | stand_in))


def table_rows(summary: pd.DataFrame, frame: pd.DataFrame, table: seminorm.PaperTable,
               reference: pd.DataFrame) -> list[Row]:
    keys = [k for k in ("data", "protocol", "rtol", "atol", "norm", "bwd_tol") if k in summary]
    rows = summary[summary["task"] == table.task].sort_values(
        keys, ascending=[k not in ("rtol", "atol") for k in keys], key=seminorm.norm_order)
    facts = scale_facts(frame[frame["task"] == table.task])
    return [table_row(summary, row, table, reference, facts) for _, row in rows.iterrows()]


def comparable(summary: pd.DataFrame) -> pd.DataFrame:
    """The seminorm rows whose change measures the seminorm (analysis.seminorm's own choice where it makes one:
    the seminorm at the forward tolerances beside the paper's default norm of the same cell)."""
    if hasattr(seminorm, "comparable"):
        return seminorm.comparable(summary)[0]
    keep = [i for i, row in summary.iterrows() if row["norm"] == "seminorm"
            and (base := seminorm.baseline(summary, row)) is not None and base["norm"] != "seminorm"]
    return summary.loc[keep]


def reductions(summary: pd.DataFrame, column: str) -> list[Value]:
    """The seminorm's reduction (%) of one count over the comparable rows, each with its seeds' spread (propagated
    from both rows' counts), smallest first."""
    out = []
    for _, row in comparable(summary).iterrows():
        change = _ours_change(row, seminorm.baseline(summary, row), column)
        if change is not None and math.isfinite(change.mean):
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
    """Our median and maximum backward-NFE reduction over rows, per count analysis.seminorm's headline takes,
    beside the abstract's 40% / 62%."""
    abstract = reference[reference["table"] == "abstract"]
    facts = frozenset(scale_facts(frame))
    counts = getattr(seminorm, "HEADLINE_COUNTS", (("bwd_total", "training steps"),))
    out = []
    for column, count in counts:
        rows = reductions(summary, column) if f"{column}_mean" in summary else []
        if not rows:
            continue
        for name, row_name, pick in (("median", "median over experiments", median),
                                     ("max", "best case", lambda v: Value(v[-1].mean, v[-1].std, len(v)))):
            hit = abstract[abstract["row"] == row_name]
            ref = Reference(Value(float(hit["value"].iloc[0])), str(hit["kind"].iloc[0]),
                            str(hit["source"].iloc[0])) if len(hit) else None
            out.append(Row(f"{name} reduction, {count}", {"headline": f"{name} reduction", "count": count,
                                                           "rows": str(len(rows))},
                           [Comparison("bwd NFE reduction (%)", "change", pick(rows), ref)], facts))
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
                rows = table_rows(summary, frame, table, reference)
                labels = {c.quantity for row in rows for c in row.comparisons}
                sections.append(Section(table.task, table.title, rows,
                                        " ".join(note for (_, label), note in zip(TEST_COUNTS, COUNT_NOTES)
                                                 if label in labels)))
        sections.append(Section("headline", "Headline: backward-NFE reduction of the seminorm against the paper's "
                                "default norm", headline_rows(summary, frame, reference),
                                "Ours: the median and the maximum over the comparable seminorm rows above (the "
                                "seminorm at the forward tolerances beside the default norm of the same cell), σ "
                                "the seeds' spread of the row(s) picked."))
    printed = seminorm.render(summary, reference) if not summary.empty else f"no adjoint runs below {root}"
    return PaperReport("seminorm", TITLE, DOC, sections, printed)
