"""Whether a reproduced number matches its reference: a noise band stated once per kind of number, and the verdict
computed from it.

A reproduction report is only worth reading if "reproduced" means the same thing in every row, so no verdict is ever
typed by hand. Each compared number has a kind (`count`, `metric`, `ratio`, `change`); BANDS says, once, how far
ours may lie from the reference for that kind; `judge` applies it:

- `reproduced`   a reference value exists and ours lies within the band;
- `differs`      ours lies outside the band: the gap and the band are shown;
- `explained`    ours lies outside the band and a documented reason applies to the row (analysis/reference/
                 explanations.csv: a reason and a docs section; the reason never decides whether the number is within
                 the band, only what a difference is put down to);
- `no reference` no reference value exists for the number (the references are in analysis/reference/);
- `not measured` a reference exists but no run of ours finished for the cell (the sweep status says why).

Absolute wall times and memory are never judged: they depend on the device, its load and on what is measured (our
graph MiB against the authors' nvidia-smi GB), so a report compares them only as ratios to a baseline row.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path

EXPLANATIONS = Path(__file__).resolve().parent / "reference" / "explanations.csv"
VERDICTS = ("reproduced", "differs", "explained", "not measured", "no reference")
# A row's verdict is its worst quantity's, in this order: one difference outweighs any number of matches.
SEVERITY = {"differs": 0, "explained": 1, "reproduced": 2, "not measured": 3, "no reference": 4}


@dataclass(frozen=True)
class Value:
    """A number as one side states it: a mean, its spread (population std over seeds or repeats; None where the
    side states none) and how many runs it pools."""

    mean: float
    std: float | None = None
    n: int | None = None

    def text(self, digits: int = 3) -> str:
        if not math.isfinite(self.mean):
            return str(self.mean)
        text = f"{self.mean + 0.0:.{digits}g}"  # + 0.0: -0.0 prints as 0
        if self.std is not None and math.isfinite(self.std):
            text += f" ± {self.std:.2g}"
        return text + (f" (n={self.n})" if self.n is not None else "")


@dataclass(frozen=True)
class Reference:
    """A reference value and where it comes from: its kind (`paper`, `unpublished draft`, `authors' logs`, `repo
    notebook` ...) is shown beside it on the page, so no kind is passed off as another."""

    value: Value
    kind: str
    source: str = ""


@dataclass(frozen=True)
class Comparison:
    """One of our numbers beside its reference (None where there is none); `number` is its kind, a key of BANDS."""

    quantity: str
    number: str
    ours: Value | None
    reference: Reference | None = None


@dataclass(frozen=True)
class Explanation:
    """A documented reason for a difference: one line, and the docs section that says more."""

    reason: str
    doc: str


@dataclass(frozen=True)
class Verdict:
    """The verdict on one number: `gap` says how far ours lies from the reference and how wide the band is."""

    label: str
    quantity: str
    ours: str = ""
    reference: str = ""
    gap: str = ""
    reason: str = ""
    doc: str = ""


def _spread(value: Value) -> float:
    return value.std if value.std is not None and math.isfinite(value.std) else 0.0


def _statistic_band(ours: Value, reference: Value) -> float:
    return 2.0 * math.hypot(_spread(ours), _spread(reference))


def _printed_half_unit(value: float) -> float:
    """Half a unit of the last digit a reference was written with (21.5 -> 0.05, 300 -> 0.5)."""
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exponent), 0) if isinstance(exponent, int) else 0.0


def _count_band(ours: Value, reference: Value) -> float:
    if _spread(ours) > 0 or _spread(reference) > 0:
        return _statistic_band(ours, reference)
    return _printed_half_unit(reference.mean)


@dataclass(frozen=True)
class Band:
    """The noise band of one kind of number: `rule` is the sentence the report prints, `width` computes it."""

    name: str
    rule: str

    def width(self, ours: Value, reference: Value) -> float:
        return (_count_band if self.name == "count" else _statistic_band)(ours, reference)


BANDS: dict[str, Band] = {band.name: band for band in (
    Band("count", "NFE and step counts: exact — ours equals the reference at the precision the reference is written "
                  "with. A count averaged over seeds (either side states a spread) is a statistic and takes the "
                  "metric band."),
    Band("metric", "test metrics, losses, gradient errors: |ours − reference| ≤ 2 √(σ_ours² + σ_ref²), σ the "
                   "population std over seeds (or repeats) each side states; a side that states no spread adds 0."),
    Band("ratio", "wall times and memory: never judged in absolute terms (devices, load and what is measured "
                  "differ); a row's value over its table's baseline row's, ours against the reference's, with the "
                  "metric band on the ratio (σ_r / r = √((σ_a/a)² + (σ_b/b)²) from both values' spreads)."),
    Band("change", "relative changes in % (the seminorm's backward-NFE reduction against the default norm): the "
                   "metric band, σ propagated from the spreads of both counts; a median or maximum over rows takes "
                   "the σ of the row(s) it picks (seed noise, not the spread between experiments)."),
)}


def ratio(numerator: Value | None, denominator: Value | None) -> Value | None:
    """numerator / denominator with its spread propagated (first order), or None where either is missing or the
    denominator is not positive."""
    if numerator is None or denominator is None or not denominator.mean > 0 or not math.isfinite(numerator.mean):
        return None
    value = numerator.mean / denominator.mean
    if numerator.std is None and denominator.std is None:
        return Value(value)
    relative = math.hypot(_spread(numerator) / numerator.mean if numerator.mean else 0.0,
                          _spread(denominator) / denominator.mean)
    return Value(value, abs(value) * relative)


def judge(comparison: Comparison, explanation: Explanation | None = None) -> Verdict:
    """The verdict of one comparison under its kind's band; `explanation` is used only when ours is outside it."""
    reference, ours = comparison.reference, comparison.ours
    if reference is None:
        return Verdict("no reference", comparison.quantity)
    theirs = f"{reference.value.text()} ({reference.kind})"
    if ours is None or not math.isfinite(ours.mean):
        return Verdict("not measured", comparison.quantity, "", theirs)
    band = BANDS[comparison.number].width(ours, reference.value)
    gap = ours.mean - reference.value.mean
    relative = f" ({100 * gap / abs(reference.value.mean):+.0f}%)" if reference.value.mean else ""
    text = f"gap {gap:+.3g}{relative}, band ±{band:.2g} ({comparison.number})"
    if abs(gap) <= band * (1 + 1e-12):
        return Verdict("reproduced", comparison.quantity, ours.text(), theirs, text)
    if explanation is not None:
        return Verdict("explained", comparison.quantity, ours.text(), theirs, text, explanation.reason,
                       explanation.doc)
    return Verdict("differs", comparison.quantity, ours.text(), theirs, text)


def overall(verdicts: list[Verdict]) -> str:
    """A row's verdict: the worst of its quantities' (differs, explained, reproduced, not measured, no reference)."""
    return min((v.label for v in verdicts), key=SEVERITY.__getitem__, default="no reference")


@dataclass(frozen=True)
class ExplanationRule:
    """One line of explanations.csv: which rows it covers (glob patterns) and the fact that must hold of them."""

    paper: str
    section: str
    row: str
    quantity: str
    when: str
    reason: str
    doc: str

    def covers(self, paper: str, section: str, row: str, quantity: str, facts: frozenset[str]) -> bool:
        return (self.paper == paper and fnmatchcase(section, self.section) and fnmatchcase(row, self.row)
                and fnmatchcase(quantity, self.quantity) and (self.when == "always" or self.when in facts))


# Facts an explanation may require of a row (`when`); the report establishes each from the records.
FACTS = ("always", "stand-in data", "below paper scale", "smoke scale")


def load_explanations(path: Path = EXPLANATIONS) -> list[ExplanationRule]:
    with path.open(newline="") as handle:
        rules = [ExplanationRule(**row) for row in csv.DictReader(handle)]
    unknown = sorted({r.when for r in rules} - set(FACTS))
    if unknown:
        raise ValueError(f"{path}: `when` must be one of {', '.join(FACTS)}; got {', '.join(unknown)}")
    return rules


def explanation_for(rules: list[ExplanationRule], paper: str, section: str, row: str, quantity: str,
                    facts: frozenset[str]) -> Explanation | None:
    """The first rule that covers the row and whose fact holds, as an Explanation; None where none does."""
    for rule in rules:
        if rule.covers(paper, section, row, quantity, facts):
            return Explanation(rule.reason, rule.doc)
    return None
