"""The reversible-solvers paper's report sections, from analysis.reversible's run frames and the authors' figures
in analysis/reference/reversible.csv (kind `authors' logs`: computed from their committed result logs).

The rows and the authors' row beside each are analysis.reversible's (its labels, solver names and `authors_row`, so
our offline-schedule checkpointing rows have no reference: the authors ran the online schedule only). Compared:
losses, test accuracies and gradient errors (`metric`), accepted steps (`count`), and runtime and memory only as
ratios to the table's baseline row of the same solver (`ratio`): reversible for runtimes, discretise-then-optimise
for memory (ours: graph or peak CUDA MiB, theirs: nvidia-smi GB of the whole process).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import reversible as rv
from analysis.report.model import PaperReport, Row, Section, reference_ratio, scale_facts, value
from analysis.verdict import Comparison, Reference, Value, ratio

TITLE = "McCallum & Foster 2024 — Efficient, Accurate and Stable Gradients for Neural ODEs"
DOC = "docs/reversible.md"
SOLVERS_V1 = {"midpoint": "midpoint", "rk4": "rk4", "dopri5": "dopri5"}


def memory(group: pd.DataFrame) -> Value | None:
    """Peak CUDA MiB where measured, else graph MiB, as analysis.reversible shows it."""
    column = "peak_cuda_mib" if group["peak_cuda_mib"].notna().any() else "graph_mib"
    return value(group[column])


def column(name: str, scale: float = 1.0) -> Callable[[pd.DataFrame], Value | None]:
    return lambda group: value(group[name], scale)


@dataclass(frozen=True)
class Quantity:
    """One compared column: the authors' column, our label, our value from a row's ok runs, its kind of number, and
    for ratios the method label of the baseline row (same solver)."""

    paper_column: str
    label: str
    ours: Callable[[pd.DataFrame], Value | None]
    number: str
    baseline: str | None = None


@dataclass(frozen=True)
class MethodTable:
    folder: str
    experiment: str  # of reversible.csv
    solvers: dict[str, str]  # our solver -> the authors' name
    methods: list[str]
    quantities: list[Quantity]


RUNTIME = Quantity("training runtime", "runtime / reversible's", column("train_seconds"), "ratio", rv.REVERSIBLE)
MEMORY = Quantity("peak GPU memory", "memory / DTO's", memory, "ratio", rv.DTO)
METHOD_TABLES: dict[str, MethodTable] = {
    "cnf": MethodTable("cnf", "cnf", SOLVERS_V1, [rv.DTO, rv.REVERSIBLE], [
        MEMORY, Quantity("best training loss (NLL)", "best training NLL", column("best_loss"), "metric")]),
    "white_dwarf": MethodTable(
        "white_dwarf", "white_dwarf", {"euler": "euler", "midpoint": "midpoint", "ralston3": "Ralston3", "rk4": "RK4"},
        rv.checkpoint_labels([2, 4, 8, 16, 32, 44]),
        [Quantity("best training loss", "best training loss [x1e-4]", column("best_loss", 1e4), "metric"), RUNTIME]),
    "oscillator": MethodTable(
        "oscillator", "coupled_oscillator",
        {"euler": "double_linear_euler", "midpoint": "double_linear_midpoint", "ralston3": "double_linear_RK3",
         "rk4": "double_linear_RK4"}, rv.checkpoint_labels([31, 16, 8, 4, 2]),
        [Quantity("best training loss", "best training loss [x1e-3]", column("best_loss", 1e3), "metric"), RUNTIME]),
    "pendulum": MethodTable(
        "pendulum", "double_pendulum", {"bosh3": "double_pend_bosh3"}, rv.checkpoint_labels([32, 16, 8, 4, 2]),
        [Quantity("best training loss", "best training loss [x1e-3]", column("best_loss", 1e3), "metric"), RUNTIME,
         Quantity("mean accepted steps per solve", "accepted steps per solve", column("fwd_steps"), "count")]),
    "cde": MethodTable("cde", "neural_cde", SOLVERS_V1, [rv.DTO, rv.REVERSIBLE], [
        MEMORY, Quantity("best test accuracy", "test accuracy", column("metric_value"), "metric")]),
}


def authors(ref: pd.DataFrame, row: str | None, paper_column: str) -> Reference | None:
    hit = rv.reference_hit(ref, row, paper_column) if row is not None else ref.iloc[0:0]
    if hit.empty:
        return None
    std = hit["std"].iloc[0]
    return Reference(Value(float(hit["value"].iloc[0]), None if pd.isna(std) else float(std)), rv.KIND,
                     f"{hit['source'].iloc[0]} ({hit['unit'].iloc[0]})")


def _ratio_of(first: Reference | None, second: Reference | None) -> Reference | None:
    return reference_ratio(first, second, f"{rv.KIND} (ratio)")


def _ok(frame: pd.DataFrame, **match: object) -> pd.DataFrame:
    if frame.empty:
        return frame
    selected = frame["status"] == "ok"
    for key, wanted in match.items():
        selected &= frame[key] == wanted
    return frame[selected]


def method_rows(root: Path, spec: MethodTable) -> list[Row]:
    frame = rv.load(root / spec.folder)
    ref = rv.reference(spec.experiment)
    facts = frozenset(scale_facts(frame)) if not frame.empty else frozenset()
    rows = []
    for solver, theirs_solver in spec.solvers.items():
        for label in spec.methods:
            group = frame[(frame["solver"] == solver) & (frame["label"] == label)] if not frame.empty else frame
            ok = _ok(group)
            theirs = rv.authors_row(label)
            comparisons = []
            for q in spec.quantities:
                their_row = theirs and f"{theirs_solver} / {theirs}"
                if q.number != "ratio":
                    comparisons.append(Comparison(q.label, q.number, q.ours(ok) if len(ok) else None,
                                                  authors(ref, their_row, q.paper_column)))
                elif label != q.baseline:
                    base = _ok(frame, solver=solver, label=q.baseline)
                    ours = ratio(q.ours(ok), q.ours(base)) if len(ok) and len(base) else None
                    reference = _ratio_of(authors(ref, their_row, q.paper_column),
                                                 authors(ref, f"{theirs_solver} / {q.baseline}", q.paper_column))
                    comparisons.append(Comparison(q.label, q.number, ours, reference))
            cells = {"solver": solver, "method": label,
                     "runs": rv.runs_column(group) if len(group) else "not run"}
            rows.append(Row(f"{solver} / {label}", cells, comparisons, facts))
    return rows


def _with_t(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(T=[rv.time_length(r) for _, r in frame.iterrows()]) if not frame.empty else frame


def grad_error_rows(root: Path) -> list[Row]:
    """Per T: reversible memory over DTO's, and both gradient errors against DTO, beside the authors' v1 logs."""
    frame = _with_t(rv.load(root / "grad_error"))
    ref = rv.reference("regression")
    facts = frozenset(scale_facts(frame)) if not frame.empty else frozenset()
    ts = sorted(frame["T"].dropna().unique()) if not frame.empty else []
    rows = []
    for t in ts:
        column_name = f"T={t:g}"
        runs = frame[(frame["T"] == t) & (frame["status"] == "ok")]
        dto, rev, otd = (runs[runs["method"].isin(m)] for m in (("direct", "direct_rk"), ("reversible",),
                                                                 ("adjoint",)))
        def theirs(row: str, column_name: str = column_name) -> Reference | None:
            return authors(ref, row, column_name)

        comparisons = [
            Comparison("reversible memory / DTO's", "ratio", ratio(memory(rev), memory(dto)) if len(rev) and len(dto)
                       else None, _ratio_of(theirs("reversible memory"),
                                                   theirs("discretise-then-optimise memory"))),
            Comparison("reversible gradient error vs DTO", "metric", value(rev["grad_abs_error_sum"]),
                       theirs("reversible gradient error vs DTO")),
            Comparison("continuous adjoint gradient error vs DTO", "metric", value(otd["grad_abs_error_sum"]),
                       theirs("continuous adjoint (OTD) gradient error vs DTO")),
        ]
        rows.append(Row(column_name, {"T": f"{t:g}", "runs": rv.runs_column(frame[frame["T"] == t])}, comparisons,
                        facts))
    return rows


def complexity_rows(root: Path) -> list[Row]:
    """Per number of steps and checkpointing row: seconds per gradient over reversible's, ours and the authors'."""
    frame = _with_t(rv.load(root / "complexity"))
    ref = rv.reference("complexity")
    facts = frozenset(scale_facts(frame)) if not frame.empty else frozenset()
    labels = [rv.checkpoint_label(k, s) for k in (2, 4, 8) for s in ("online", "offline")]
    rows = []
    for t in sorted(frame["T"].dropna().unique()) if not frame.empty else []:
        steps = round(t / 0.01)
        paper_column = f"{steps} steps (T={t:g})"
        base = _ok(frame, T=t, label=rv.REVERSIBLE)
        for label in labels:
            group = frame[(frame["T"] == t) & (frame["label"] == label)]
            ok = _ok(group)
            ours = ratio(value(ok["seconds_per_iter"]), value(base["seconds_per_iter"])) if len(ok) else None
            reference = _ratio_of(authors(ref, rv.authors_row(label), paper_column),
                                         authors(ref, rv.REVERSIBLE, paper_column))
            rows.append(Row(f"{steps} steps / {label}", {"steps": str(steps), "method": label,
                                                           "runs": rv.runs_column(group) if len(group) else "not run"},
                            [Comparison("s per gradient / reversible's", "ratio", ours, reference)], facts))
    return rows


def convergence_rows(root: Path) -> list[Row]:
    path = root / "convergence" / "convergence.json"
    if not path.exists():
        return []
    rows = {}
    for r in json.loads(path.read_text())["rows"]:
        entry = rows.setdefault(r["scheme"], Row(r["scheme"], {"scheme": r["scheme"],
                                                               "order": str(r.get("order", "—"))}, []))
        entry.comparisons.append(Comparison(f"{r['method']} slope", "metric", Value(float(r["slope"]))))
    return list(rows.values())


def build(root: Path) -> PaperReport:
    builders = {"grad_error": grad_error_rows, "complexity": complexity_rows, "convergence": convergence_rows,
                **{key: (lambda r, spec=spec: method_rows(r, spec)) for key, spec in METHOD_TABLES.items()}}
    titles = {**{key: title for key, (title, _) in rv.TABLES.items()},
              "cde": "v1 — neural CDE on CharacterTrajectories (memory, best test accuracy)"}
    sections = []
    for key in [*rv.TABLES, "cde"]:
        rows = builders[key](root)
        if any(row.cells.get("runs", "") != "not run" for row in rows):
            sections.append(Section(key, titles[key], rows))
    printed = rv.render(root) if root.exists() else f"{root} does not exist"
    return PaperReport("reversible", TITLE, DOC, sections, printed)
