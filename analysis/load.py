"""Load every run's result.json below a directory into one DataFrame (one row per run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from runs.record import RESULT


def load_results(root: str | Path) -> pd.DataFrame:
    """One row per result.json below `root`; nested fields (e.g. versions) are flattened with dots. A result that
    cannot be parsed is kept as a row with status 'failed' and the parse error, never dropped."""
    rows = []
    for path in sorted(Path(root).rglob(RESULT)):
        try:
            row = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            row = {"status": "failed", "error": f"unreadable result.json: {exc}"}
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
