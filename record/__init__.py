"""The run record: what a run directory holds, and the one module set that writes and reads it.

A run directory (DESIGN.md, "The run directory") is the source of truth of one run:

  .hydra/config.yaml   Hydra's own copy of the resolved config
  metrics.jsonl        one JSON line per training step (`StepRow`), evaluation (`EvalRow`) and metric pass
                       (`PassRow`)
  result.json          one `RunResult`, written once at the end, atomically
  checkpoint.pt        the latest training state (written by runs; only its name lives here)
  error.txt            the traceback of a failed attempt

`runs` writes through this package, `analysis` and the Hydra launcher plugin read through it. It imports neither
torch nor any part of the harness, so reading results never pulls in training code (tests/test_architecture.py).
"""

from record.files import (
    CHECKPOINT,
    ERROR_LOG,
    HYDRA_CONFIG,
    HYDRA_OVERRIDES,
    LOCK,
    METRICS,
    MULTIRUN,
    PREVIOUS_CHECKPOINT,
    PREVIOUS_RESULT,
    RESULT,
    SWEEPS,
    UNREADABLE_CHECKPOINT,
    RecordWriteError,
    RunDir,
    atomic_write,
)
from record.fingerprint import NOT_FINGERPRINTED, config_fingerprint
from record.read import (
    Unreadable,
    eval_rows,
    load_results,
    pass_rows,
    read_json,
    read_metrics,
    read_result,
    step_rows,
)
from record.result import NFE_FIELDS, EvalRow, PassRow, RunResult, Status, StepRow

__all__ = [
    "CHECKPOINT", "ERROR_LOG", "EvalRow", "HYDRA_CONFIG", "HYDRA_OVERRIDES", "LOCK", "METRICS", "MULTIRUN",
    "NFE_FIELDS", "NOT_FINGERPRINTED", "PassRow", "PREVIOUS_CHECKPOINT", "PREVIOUS_RESULT", "RESULT",
    "RecordWriteError", "RunDir", "RunResult", "SWEEPS", "Status", "StepRow", "UNREADABLE_CHECKPOINT", "Unreadable",
    "atomic_write", "config_fingerprint", "eval_rows", "load_results", "pass_rows", "read_json", "read_metrics",
    "read_result", "step_rows",
]
