"""HTML pieces of the report page: one self-contained document (inline CSS, figures as data: URIs, one small inline
script that sorts a table by the clicked column), so the page opens from a results folder copied anywhere, offline."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from html import escape
from pathlib import Path

from markdown_it import MarkdownIt

from analysis.verdict import SEVERITY, Verdict

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f1f1f1; } table.sortable th { cursor: pointer; } table.sortable th:hover { background: #e2e2e2; }
.scroll { overflow-x: auto; } .note { color: #555; } .kind { color: #666; font-size: 11px; }
.verdict { font-weight: 600; padding: 1px 6px; border-radius: 3px; white-space: nowrap; }
.reproduced { background: #d6f5d6; } .differs { background: #f9d4d4; } .explained { background: #fdf0c2; }
.no-reference { background: #e8e8e8; } .not-measured { background: #dde6f7; }
.why { font-size: 11.5px; color: #444; margin: 2px 0 0; padding-left: 1.1em; }
.failed, .unreadable { background: #fbe3e3; } .missing, .running { background: #fff3d1; }
figure { display: inline-block; margin: .5em 1em 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
code, pre { font-size: 12px; } details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
"""

# Sorts the clicked column of a `sortable` table (numbers numerically, text alphabetically; a cell's data-sort wins).
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, index) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("data-order") !== "asc";
      th.setAttribute("data-order", ascending ? "asc" : "desc");
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[index];
        return cell ? (cell.getAttribute("data-sort") || cell.textContent.trim()) : "";
      };
      Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + f"\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n")


def table(header: list[str], rows: list[list[str]], sortable: bool = True, sort_keys: list[list[str]] | None = None,
          row_classes: list[str] | None = None) -> str:
    """A table of already-escaped HTML cells; `sort_keys` gives a cell's data-sort (empty: its text)."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = []
    for i, row in enumerate(rows):
        keys = sort_keys[i] if sort_keys else [""] * len(row)
        cells = "".join(f"<td data-sort=\"{escape(k)}\">{c}</td>" if k else f"<td>{c}</td>" for c, k in zip(row, keys))
        css = f" class=\"{row_classes[i]}\"" if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    css = " class=\"sortable\"" if sortable else ""
    return (f"<div class=\"scroll\"><table{css}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body)
            + "\n</tbody></table></div>")


def badge(label: str) -> str:
    return f"<span class=\"verdict {label.replace(' ', '-')}\">{escape(label)}</span>"


def verdict_cell(label: str, verdicts: list[Verdict], doc_href) -> tuple[str, str]:
    """(HTML, sort key) of a row's verdict: the badge, then one line per quantity that has a reference."""
    lines = []
    for v in verdicts:
        if v.label == "no reference":
            continue
        text = f"{badge(v.label)} {escape(v.quantity)}: {escape(v.gap or 'no finished run')}"
        if v.reason:
            text += f" — {escape(v.reason)} (<a href=\"{escape(doc_href(v.doc))}\">docs</a>)"
        lines.append(f"<li>{text}</li>")
    details = f"<ul class=\"why\">{''.join(lines)}</ul>" if lines else ""
    return badge(label) + details, str(SEVERITY[label])


def figure(path: Path) -> str:
    """A PNG embedded as a data: URI, captioned with its file name."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(path.name)}\">"
            f"<figcaption>{escape(path.name)}</figcaption></figure>")


def markdown(text: str) -> str:
    """The paper module's printed Markdown (headings, pipe tables, lists) as HTML; raw HTML in it is escaped."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
