"""Readers of run directories: one result, one metrics log, or every result below a folder as a DataFrame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from record.files import METRICS, RESULT
from record.result import RunResult


class Unreadable(ValueError):
    """A record file that exists but cannot be read (not UTF-8, not JSON, not the expected shape); the message names
    the file and the reason in one line."""


def read_json(path: Path) -> Any:
    """A JSON file's content; `Unreadable` naming the file when it cannot be decoded or parsed."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Unreadable(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def read_result(run_dir: str | Path) -> RunResult | None:
    """The run's result, or None where it has none yet; `Unreadable` when the file exists but cannot be read."""
    path = Path(run_dir) / RESULT
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise Unreadable(f"{path}: holds {type(data).__name__}, not an object of result fields")
    try:
        return RunResult.from_json(data)
    except (ValueError, TypeError) as exc:
        raise Unreadable(f"{path}: {exc}") from None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete line of the run's metrics.jsonl, in order (empty where there is none). A line that does not
    parse (the last one, while a running process writes it, or one a kill cut short) is left out."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    rows = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def step_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training steps' rows of a metrics log (`record.StepRow`)."""
    return [row for row in rows if "loss" in row]


def eval_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations' rows of a metrics log (`record.EvalRow`)."""
    return [row for row in rows if "split" in row]


def pass_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metric passes' rows of a metrics log (`record.PassRow`)."""
    return [row for row in rows if "pass" in row]


def load_results(root: str | Path) -> pd.DataFrame:
    """One row per result.json below `root`; nested fields (e.g. versions) are flattened with dots. A result that
    cannot be read is kept as a row with status 'unreadable' and the reason, never dropped."""
    rows = []
    for path in sorted(Path(root).rglob(RESULT)):
        try:
            row = read_json(path)
            if not isinstance(row, dict):
                raise Unreadable(f"{path}: holds {type(row).__name__}, not an object of result fields")
        except Unreadable as exc:
            row = {"status": "unreadable", "error": str(exc)}
        row.setdefault("run_dir", str(path.parent))
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    frame = pd.json_normalize(rows)
    for column in frame.columns:  # NaN / inf were written as strings to keep the JSON valid
        values = frame[column].dropna()
        if not pd.api.types.is_numeric_dtype(frame[column]) and len(values) and values.map(_is_number).all():
            frame[column] = pd.to_numeric(frame[column].replace(_NON_FINITE))
    return frame


_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _is_number(value: object) -> bool:
    if isinstance(value, str):
        return value in _NON_FINITE
    return isinstance(value, (int, float)) and not isinstance(value, bool)
