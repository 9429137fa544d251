"""`python -m analysis.report RUNS_DIR [--paper P]`: one self-contained HTML page per paper reproduction, written to
RUNS_DIR/report.html, that answers "did it reproduce?" row by row.

The page holds, for each paper table, our cells beside the reference cells (each labelled by its kind: paper,
unpublished draft, authors' logs, repo notebook) and a verdict per row computed from the noise bands of
analysis/verdict.py (stated once at the top of the page); then the figures of the paper's notebook (RUNS_DIR/figures/
*.png, embedded), the sweep status (analysis.status: ok, running, failed, unreadable and missing cells, with their
errors), the provenance the run records carry (commit, library versions, device, scale, dates), and the paper
module's own printed tables with every column. The verdicts also go to RUNS_DIR/report_verdicts.csv.
`make reproduce-<paper>` ends with this. The paper is read from RUNS_DIR's path (runs/<paper>/<scale>) or its
experiment folders unless --paper names it.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import pandas as pd

from analysis import status
from analysis.report import gq, html, reversible, seminorm
from analysis.report.model import PaperReport, Row, Section
from analysis.verdict import BANDS, SEVERITY, VERDICTS, Verdict, explanation_for, judge, load_explanations, overall
from record import load_results

REPO = Path(__file__).resolve().parent.parent.parent
PAPERS: dict[str, Callable[[Path], PaperReport]] = {"seminorm": seminorm.build, "gq": gq.build,
                                                     "reversible": reversible.build}
# Experiment folders that name a paper when the path does not (e.g. a temporary OUT=).
MARKERS = {"seminorm": {"speech_commands", "cnf_images", "acrobot"},
           "gq": {"nested_spheres", "sines10", "sines50", "g1d", "toy_gradient", "ou_sde", "ou_ncosines"},
           "reversible": {"grad_error", "complexity", "white_dwarf", "oscillator", "pendulum", "convergence"}}
REPORT = "report.html"
VERDICTS_CSV = "report_verdicts.csv"


def infer_paper(root: Path) -> str | None:
    """The paper of a results folder: a path component named after it, else the one whose experiment folders it
    holds most of."""
    for part in reversed(root.resolve().parts):
        if part in PAPERS:
            return part
    folders = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    paper, hits = max(((p, len(folders & m)) for p, m in MARKERS.items()), key=lambda x: x[1])
    return paper if hits else None


JudgedRow = tuple[Row, list[Verdict], str]


NOT_RUN = "not run"  # a row's `runs` cell when the sweep at this scale has no run of it


def judge_section(paper: str, section: Section, rules) -> list[JudgedRow]:
    """Every row's verdicts (one per compared number) and its overall verdict; rows the sweep did not run at this
    scale are left out (the section's note names them)."""
    judged = []
    for row in section.rows:
        if row.cells.get("runs") == NOT_RUN:
            continue
        verdicts = [judge(c, explanation_for(rules, paper, section.key, row.name, c.quantity, row.facts))
                    for c in row.comparisons]
        judged.append((row, verdicts, overall(verdicts)))
    return judged


def _doc_href(out: Path) -> Callable[[str], str]:
    """A docs link ('docs/x.md#anchor') relative to where the page is written, so it opens from the page."""
    def href(doc: str) -> str:
        path, _, anchor = doc.partition("#")
        return os.path.relpath(REPO / path, out) + (f"#{anchor}" if anchor else "")
    return href


def section_html(section: Section, judged: list[JudgedRow], doc_href: Callable[[str], str]) -> str:
    quantities = list(dict.fromkeys(c.quantity for row, _, _ in judged for c in row.comparisons))
    referenced = {c.quantity for row, _, _ in judged for c in row.comparisons if c.reference is not None}
    identity = list(dict.fromkeys(key for row, _, _ in judged for key in row.cells))
    header = [escape(k) for k in identity]
    for q in quantities:
        header += [f"{escape(q)} — ours"] + ([f"{escape(q)} — reference"] if q in referenced else [])
    header.append("verdict")
    rows, keys = [], []
    for row, verdicts, label in judged:
        by_quantity = {c.quantity: c for c in row.comparisons}
        cells = [escape(row.cells.get(k, "")) for k in identity]
        sort = [""] * len(identity)
        for q in quantities:
            comparison = by_quantity.get(q)
            ours = comparison.ours if comparison else None
            cells.append(escape(ours.text()) if ours else "—")
            sort.append(repr(ours.mean) if ours else "")
            if q in referenced:
                ref = comparison.reference if comparison else None
                cells.append(f"{escape(ref.value.text())} <span class=\"kind\" title=\"{escape(ref.source)}\">"
                             f"[{escape(ref.kind)}]</span>" if ref else "—")
                sort.append(repr(ref.value.mean) if ref else "")
        cell, key = html.verdict_cell(label, verdicts, doc_href)
        cells.append(cell)
        sort.append(key)
        rows.append(cells)
        keys.append(sort)
    counts = Counter(label for _, _, label in judged)
    summary = ", ".join(f"{html.badge(v)} × {counts[v]}" for v in VERDICTS if counts[v])
    note = f"<p class=\"note\">{escape(section.note)}</p>" if section.note else ""
    not_run = [row.name for row in section.rows if row.cells.get("runs") == NOT_RUN]
    if not_run:
        note += (f"<details class=\"note\"><summary>{len(not_run)} rows of the paper's table not run at this "
                 f"scale</summary>{escape('; '.join(not_run))}</details>")
    unreferenced = [q for q in quantities if q not in referenced]
    if unreferenced:
        note += f"<p class=\"note\">No reference value for: {escape(', '.join(unreferenced))}.</p>"
    return (f"<section id=\"{escape(section.key)}\"><h3>{escape(section.title)}</h3>{note}"
            f"<p>rows: {summary or 'none'}</p>{html.table(header, rows, sort_keys=keys)}</section>")


def status_html(root: Path) -> str:
    report = status.collect(root)
    if not report:
        return "<p>No sweeps or runs below this folder.</p>"
    counts = []
    for sweep, cells in report.items():
        n = Counter(c.state for c in cells)
        counts.append([escape(_relative(sweep, root)), str(len(cells)), *(str(n[s]) for s in status.STATES)])
    parts = [html.table(["sweep", "cells", *status.STATES], counts)]
    problems = []
    for sweep, cells in report.items():
        common = set.intersection(*(set(c.key) for c in cells)) if len(cells) > 1 else set()
        for c in cells:
            if c.state != "ok":
                problems.append((c.state, [escape(c.state), escape(_relative(sweep, root)),
                                           escape(status.cell_label(c, common)), escape(c.detail),
                                           escape(_relative(c.run_dir, root) if c.run_dir else "—")]))
    if problems:
        parts.append(html.table(["state", "sweep", "cell", "error / detail", "run dir"], [p for _, p in problems],
                                row_classes=[s for s, _ in problems]))
    else:
        parts.append("<p>Every cell is ok.</p>")
    return "\n".join(parts)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def _values(frame: pd.DataFrame, column: str) -> str:
    if column not in frame:
        return "not recorded"
    counts = frame[column].dropna().astype(str).value_counts()
    if counts.empty:
        return "not recorded"
    return "; ".join(f"{value} ({n} runs)" if len(counts) > 1 else value for value, n in counts.items())


def provenance_html(root: Path, now: datetime) -> str:
    """What the run records say about where their numbers come from; several values are listed with their counts."""
    frame = load_results(root)
    rows = [["results folder", escape(str(root.resolve()))],
            ["report written", escape(now.strftime("%Y-%m-%d %H:%M:%S %Z"))]]
    if frame.empty:
        return html.table(["", ""], rows, sortable=False) + "<p>No run records.</p>"
    rows += [["runs", str(len(frame))], ["scale", escape(_values(frame, "scale"))],
             ["git commit", escape(_values(frame, "git_commit"))], ["device", escape(_values(frame, "device"))],
             ["device name", escape(_values(frame, "device_name"))], ["host", escape(_values(frame, "hostname"))]]
    for column in sorted(c for c in frame.columns if c.startswith("versions.")):
        rows.append([escape(column.removeprefix("versions.")), escape(_values(frame, column))])
    for column, pick in (("started_at", min), ("finished_at", max)):
        stamps = frame[column].dropna().astype(str) if column in frame else []
        rows.append([("first run started" if pick is min else "last run finished"),
                     escape(pick(stamps)) if len(stamps) else "not recorded"])
    return html.table(["", "from the run records"], rows, sortable=False)


def bands_html() -> str:
    items = "".join(f"<li><b>{escape(b.name)}</b>: {escape(b.rule)}</li>" for b in BANDS.values())
    verdicts = ("<b>reproduced</b>: a reference exists and ours lies within its band; <b>differs</b>: outside, "
                "the gap and the band shown; <b>explained</b>: outside, and a documented reason applies "
                "(analysis/reference/explanations.csv, with the docs section); <b>not measured</b>: a reference "
                "exists but no run of ours finished; <b>no reference</b>: no reference value for the number. A "
                "row's verdict is its worst number's.")
    return f"<p>{verdicts}</p><ul>{items}</ul>"


def render(root: Path, paper: str, now: datetime | None = None) -> tuple[str, list[dict[str, str]]]:
    """The page and its verdicts (one dict per compared number)."""
    now = now or datetime.now(timezone.utc)
    report = PAPERS[paper](root)
    rules = load_explanations()
    href = _doc_href(root)
    judged = [(section, judge_section(paper, section, rules)) for section in report.sections]
    records = [{"section": s.key, "row": row.name, "quantity": v.quantity, "verdict": v.label, "ours": v.ours,
                "reference": v.reference, "gap": v.gap, "reason": v.reason, "doc": v.doc}
               for s, rows in judged for row, verdicts, _ in rows for v in verdicts]
    counts = Counter(label for _, rows in judged for _, _, label in rows)
    figures = sorted((root / "figures").glob("*.png")) if (root / "figures").is_dir() else []
    scale = _values(load_results(root), "scale") if root.is_dir() else "—"
    body = [f"<h1>{escape(report.title)}: reproduction report</h1>",
            f"<p>Results: <code>{escape(str(root))}</code> · scale: {escape(scale)} · written "
            f"{escape(now.strftime('%Y-%m-%d %H:%M'))} · paper's docs: <a href=\"{escape(href(report.doc))}\">"
            f"{escape(report.doc)}</a></p>",
            "<p>Rows by verdict: " + (", ".join(f"{html.badge(v)} × {counts[v]}" for v in
                                                sorted(counts, key=SEVERITY.__getitem__)) or "no rows") + "</p>",
            "<nav><a href=\"#bands\">verdicts and noise bands</a> · "
            + " · ".join(f"<a href=\"#{escape(s.key)}\">{escape(s.key)}</a>" for s in report.sections)
            + " · <a href=\"#figures\">figures</a> · <a href=\"#status\">sweep status</a> · "
              "<a href=\"#provenance\">provenance</a> · <a href=\"#printed\">all columns</a></nav>",
            f"<h2 id=\"bands\">How a verdict is reached</h2>{bands_html()}",
            "<h2>Tables</h2>",
            *[section_html(s, rows, href) for s, rows in judged],
            "<h2 id=\"figures\">Figures</h2>",
            "".join(html.figure(p) for p in figures) or "<p>No figures (run the paper's notebook).</p>",
            f"<h2 id=\"status\">Sweep status</h2>{status_html(root)}",
            f"<h2 id=\"provenance\">Provenance</h2>{provenance_html(root, now)}",
            f"<h2 id=\"printed\">Every column, as <code>python -m analysis.{escape(paper)}</code> prints it</h2>",
            f"<details><summary>show</summary><div class=\"scroll\">{html.markdown(report.printed)}</div></details>"]
    return html.page(f"{paper} reproduction report", body), records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--paper", choices=sorted(PAPERS), help="default: read from RUNS_DIR")
    args = parser.parse_args(argv)
    if not args.runs_dir.is_dir():
        parser.error(f"{args.runs_dir} is not a directory; run `make reproduce-<paper>` first")
    paper = args.paper or infer_paper(args.runs_dir)
    if paper is None:
        parser.error(f"cannot tell which paper {args.runs_dir} holds; pass --paper {{{','.join(sorted(PAPERS))}}}")
    page, records = render(args.runs_dir, paper)
    (args.runs_dir / REPORT).write_text(page, encoding="utf-8")
    with (args.runs_dir / VERDICTS_CSV).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["section", "row", "quantity", "verdict", "ours", "reference", "gap", "reason",
                                         "doc"])
        writer.writeheader()
        writer.writerows(records)
    counts = Counter(r["verdict"] for r in records)
    print(f"report: {args.runs_dir / REPORT} ({', '.join(f'{v} {counts[v]}' for v in VERDICTS if counts[v])} "
          f"compared numbers; verdicts in {VERDICTS_CSV})")
    return 0
