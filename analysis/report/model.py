"""What a paper's report holds before it becomes HTML: sections (one per paper table), rows, and each row's compared
numbers. The per-paper adapters (analysis/report/{seminorm,gq,reversible}.py) build these from the DataFrames the
paper modules compute; analysis/report/html.py renders them; the verdicts come from analysis/verdict.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from analysis.verdict import Comparison, Reference, Value, ratio


@dataclass
class Row:
    """One row of a paper table: `cells` identify it (shown first, in order), `comparisons` are its numbers beside
    their references, `facts` what holds of its runs (analysis.verdict.FACTS: e.g. stand-in data), for the
    explanations."""

    name: str
    cells: dict[str, str]
    comparisons: list[Comparison]
    facts: frozenset[str] = frozenset()


@dataclass
class Section:
    """One paper table: `key` names it in analysis/reference/explanations.csv, `note` says what its numbers are."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    note: str = ""


@dataclass
class PaperReport:
    """Everything a paper's page shows that is specific to the paper; the status, figures and provenance come
    from the run directories themselves."""

    paper: str
    title: str
    doc: str
    sections: list[Section]
    printed: str  # the paper module's own Markdown output (every column), shown at the end of the page


def value(values: pd.Series | None, scale: float = 1.0) -> Value | None:
    """Mean ± population std (as the papers' scripts aggregate) of the finite values, or None where there are none."""
    if values is None:
        return None
    finite = pd.to_numeric(values, errors="coerce")
    finite = finite[finite.map(math.isfinite)] * scale
    if finite.empty:
        return None
    return Value(float(finite.mean()), float(finite.std(ddof=0)), len(finite))


def scale_facts(frame: pd.DataFrame) -> set[str]:
    """'below paper scale' where any run of the frame ran at another scale than `paper` ('smoke scale' where one ran
    at smoke); 'stand-in data' where a run's recorded data set names itself a stand-in."""
    facts = set()
    if "scale" in frame and (frame["scale"].fillna("?") != "paper").any():
        facts.add("below paper scale")
    if "scale" in frame and (frame["scale"] == "smoke").any():
        facts.add("smoke scale")
    if "dataset" in frame and frame["dataset"].fillna("").str.contains("stand-in", case=False).any():
        facts.add("stand-in data")
    return facts


def reference_ratio(first: Reference | None, second: Reference | None, kind: str) -> Reference | None:
    """first / second as a reference value (spreads propagated), under `kind`; None where either is missing."""
    quotient = ratio(first.value, second.value) if first is not None and second is not None else None
    return Reference(quotient, kind, first.source) if quotient is not None else None


def percent_change(quotient: Value | None) -> Value | None:
    """A ratio r as the change 100 (r - 1) %, its spread scaled alike."""
    if quotient is None:
        return None
    return Value(100 * (quotient.mean - 1), None if quotient.std is None else 100 * quotient.std, quotient.n)
