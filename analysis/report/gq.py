"""The GQ paper's report sections, from analysis.gq's experiment frames (every run with its task settings and the
paper's method label).

The paper reports figures, not tables, and no value of them was found (analysis/reference/gq.md), so every row of
the width sweeps is `no reference`: the page still shows our numbers per experiment x width x method. The one set
of reference values is the authors' repository notebook g1d_example.ipynb (width 3000, lr 1e-4, 200 epochs; kind
`repo notebook`, not the paper): its training MSE (`metric`) and its training times as ratios to Direct (`ratio`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import gq
from analysis.report.model import PaperReport, Row, Section, reference_ratio, scale_facts, value
from analysis.verdict import Comparison, Reference, Value, ratio
from record import RESULT, read_metrics, step_rows

TITLE = "Norcliffe & Deisenroth 2023 — Faster Training of Neural ODEs Using Gauss–Legendre Quadrature"
DOC = "docs/gq.md"
NOTEBOOK_KIND = "repo notebook (not paper)"
SWEEP_KEYS = ("cfg.width", "cfg.hidden_channels", "cfg.ncosines")  # the x axis of the paper's figures


def _ordered(labels) -> list[str]:
    return sorted(labels, key=lambda s: (gq.ORDER.index(s) if s in gq.ORDER else len(gq.ORDER), s))


def _runs(group: pd.DataFrame) -> str:
    ok = int((group["status"] == "ok").sum())
    return f"{ok}/{len(group)}"


def sweep_rows(frame: pd.DataFrame, name: str) -> list[Row]:
    """One row per point of the figure's x axis x method: training time, test metric, NFE; no reference."""
    present = [key for key in SWEEP_KEYS if key in frame and frame[key].notna().any()]
    axis = next((key for key in present if frame[key].nunique() > 1), present[0] if present else None)
    keys = [k for k in ("dataset", axis) if k is not None and (k != "dataset" or name == "images")]
    facts = frozenset(scale_facts(frame))
    rows = []
    for identity, group in frame.groupby(keys, sort=True, dropna=False) if keys else [((), frame)]:
        identity = identity if isinstance(identity, tuple) else (identity,)
        for label in _ordered(group["label"].unique()):
            runs = group[group["label"] == label]
            ok = runs[runs["status"] == "ok"]
            metric = str(runs["metric"].dropna().iloc[0]) if runs["metric"].notna().any() else "test metric"
            cells = {key.removeprefix("cfg."): _text(v) for key, v in zip(keys, identity)}
            cells.update(method=label, runs=_runs(runs))
            comparisons = [Comparison("train s", "ratio", value(ok["train_seconds"])),
                           Comparison(metric, "metric", value(ok["metric_value"])),
                           Comparison("fwd NFE / iter", "count", value(ok["fwd_nfe"])),
                           Comparison("bwd NFE / iter", "count", value(ok["bwd_nfe"]))]
            rows.append(Row(" / ".join([*cells.values()][:-1]), cells, comparisons, facts))
    return rows


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _tail_mean(run_dirs: pd.Series, key: str) -> float | None:
    """Mean of `key` over the last 10 training steps of each run (the notebook's "epochs 190-200")."""
    tail = [row[key] for d in run_dirs for row in step_rows(read_metrics(d))[-10:]]
    return sum(tail) / len(tail) if tail else None


def notebook_rows(frame: pd.DataFrame) -> list[Row]:
    """The notebook's comparison at width 3000, lr 1e-4: training MSE, and each time over Direct's."""
    notebook = frame[(frame["cfg.width"] == 3000) & (frame["cfg.lr"] == 1e-4)]
    if notebook.empty:
        return []
    ref = gq.reference_rows("g1d")

    def theirs(label: str, column: str) -> Reference | None:
        hit = ref[(ref["row"] == label) & (ref["column"] == column)]
        return Reference(Value(float(hit["value"].iloc[0])), NOTEBOOK_KIND, str(hit["source"].iloc[0])) \
            if len(hit) else None

    ok = notebook[notebook["status"] == "ok"]
    base = _times(ok[ok["label"] == "Direct"])
    facts = frozenset(scale_facts(notebook))
    rows = []
    for label in ("Direct", "Adjoint", "GQ"):
        runs = ok[ok["label"] == label]
        mse = _value(_tail_mean(runs["run_dir"], "loss"))
        comparisons = [Comparison("mean train MSE epochs 190-200", "metric", mse,
                                  theirs(label, "mean train MSE epochs 190-200"))]
        if label != "Direct":
            comparisons += [Comparison(f"{column} / Direct's", "ratio", ratio(mine, base[column]),
                                       reference_ratio(theirs(label, column), theirs("Direct", column),
                                                       NOTEBOOK_KIND))
                            for column, mine in _times(runs).items()]
        rows.append(Row(label, {"method": label, "runs": _runs(notebook[notebook["label"] == label])}, comparisons,
                        facts))
    return rows


def _times(runs: pd.DataFrame) -> dict[str, Value | None]:
    """The notebook's two times of our runs: the total training time and the mean of the last 10 steps."""
    return {"total training time": value(runs["train_seconds"]),
            "mean epoch time epochs 190-200": _value(_tail_mean(runs["run_dir"], "step_seconds"))}


def _value(mean: float | None) -> Value | None:
    return None if mean is None else Value(mean)


def build(root: Path) -> PaperReport:
    sections = []
    for name in sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob(RESULT))) if root.exists() else []:
        frame = gq.load_experiment(root / name)
        if frame.empty:
            continue
        title = gq.TABLES.get(name, (name,))[0]
        if name == "g1d":
            notebook = notebook_rows(frame)
            if notebook:
                sections.append(Section("g1d_notebook", "g1d, width 3000, lr 1e-4: ours beside the repo notebook "
                                        "g1d_example.ipynb", notebook, "Times as ratios to Direct's only."))
            frame = frame[frame["cfg.lr"] != 1e-4]
        if name == "toy_gradient":
            sections.append(Section(name, "toy gradient (dz/dt = a z, L = z(T)^2): relative errors over T",
                                    toy_rows(frame)))
        elif not frame.empty:
            sections.append(Section(name, f"{title}: training time, test metric and NFE against the sweep",
                                    sweep_rows(frame, name)))
    printed = gq.render(root) if root.exists() else f"{root} does not exist"
    return PaperReport("gq", TITLE, DOC, sections, printed)


def toy_rows(frame: pd.DataFrame) -> list[Row]:
    facts = frozenset(scale_facts(frame))
    rows = []
    for label in _ordered(frame["label"].unique()):
        runs = frame[frame["label"] == label]
        ok = runs[runs["status"] == "ok"]
        comparisons = [Comparison(f"mean rel. error {key}", "metric", value(ok.get(f"mean_rel_error_{key}")))
                       for key in ("loss", "dz0", "da", "dT")]
        rows.append(Row(label, {"method": label, "runs": _runs(runs)}, comparisons, facts))
    return rows
