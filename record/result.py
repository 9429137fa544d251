"""What a run records, by name: its status, its result, and the rows of its metrics log.

One name per quantity, the same in `metrics.jsonl` and `result.json`: a training step's row carries `fwd_nfe`,
`bwd_nfe`, `fwd_steps`, ... for that step; the result carries the same names as means per training iteration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Counts a solve reports, split forward / backward (calls made while autograd runs a backward pass are backward).
NFE_FIELDS = ("fwd_nfe", "bwd_nfe", "fwd_steps", "fwd_rejected", "bwd_steps", "bwd_rejected")


class Status(str, Enum):
    """How a run ended. Anything but `ok` is still a result: the sweep table shows it, the sweep goes on."""

    OK = "ok"
    DIVERGED = "diverged"  # the loss or the solution stopped being finite
    SOLVER_FAILED = "solver_failed"  # step size underflow, or more steps needed than allowed
    OOM = "oom"  # out of memory
    FAILED = "failed"  # anything else: an invalid config, unreadable data, an exception

    def __str__(self) -> str:
        return self.value


@dataclass
class StepRow:
    """One training step in metrics.jsonl."""

    step: int
    loss: float
    step_seconds: float
    elapsed: float
    warmup: bool
    fwd_nfe: int = 0
    bwd_nfe: int = 0
    fwd_steps: int = 0
    fwd_rejected: int = 0
    bwd_steps: int = 0
    bwd_rejected: int = 0


@dataclass
class EvalRow:
    """One evaluation in metrics.jsonl: the task's test metrics (by the task's own names, in `metrics`), the
    forward NFE of the evaluation, and the NFE of one forward+backward pass on held-out data (where counted)."""

    step: int
    metrics: dict[str, float]
    eval_fwd_nfe: int
    split: str = "test"
    heldout_fwd_nfe: int | None = None
    heldout_bwd_nfe: int | None = None

    def as_json(self) -> dict[str, Any]:
        row = {"step": self.step, "split": self.split, **self.metrics, "eval_fwd_nfe": self.eval_fwd_nfe}
        if self.heldout_bwd_nfe is not None:
            row.update(heldout_fwd_nfe=self.heldout_fwd_nfe, heldout_bwd_nfe=self.heldout_bwd_nfe)
        return row


@dataclass
class PassRow:
    """One metric pass in metrics.jsonl (train.metric_pass_every, the seminorm authors' protocol): a forward and a
    backward pass over every batch of one whole split, with no optimiser step. `final` passes evaluate the model the
    run ends with (the best one where train.select_best) after training and carry step = the number of training steps
    done; a training-time pass carries the step after which it ran. `metrics` are per-item means (e.g. accuracy)."""

    step: int
    split: str
    final: bool
    epoch: int
    loss: float
    fwd_nfe: int
    bwd_nfe: int
    items: int
    seconds: float
    lr: float
    metrics: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        # Own key names, so the readers of steps (`loss`) and evaluations (`split`) never take a pass for theirs.
        return {"step": self.step, "pass": self.split, "final": self.final, "epoch": self.epoch,
                "pass_loss": self.loss, "pass_fwd_nfe": self.fwd_nfe, "pass_bwd_nfe": self.bwd_nfe,
                "items": self.items, "pass_seconds": self.seconds, "lr": self.lr, "pass_metrics": self.metrics}


@dataclass
class RunResult:
    """result.json. Fields are written flat; `extra` holds what varies by method and task (a method's settings,
    e.g. `coupling` or `gtol`; the task's test metrics by name, e.g. `test_nll`) and is written flat beside them."""

    # which grid point this run is
    task: str | None = None
    method: str | None = None
    norm: str | None = None
    solver: str | None = None
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    dtype: str | None = None
    seed: int | None = None
    scale: str | None = None
    protocol: str | None = None  # conf/protocol/<name>.yaml: harness or authors
    run_dir: str | None = None
    config_fingerprint: str | None = None
    started_at: str | None = None
    status: Status = Status.FAILED
    error: str | None = None
    # what the run used
    dataset: str | None = None
    metric: str | None = None
    lower_is_better: bool | None = None
    # training: counts are means per training iteration (NFE_FIELDS), times in seconds
    iterations: int | None = None
    fwd_nfe: float | None = None
    bwd_nfe: float | None = None
    fwd_steps: float | None = None
    fwd_rejected: float | None = None
    bwd_steps: float | None = None
    bwd_rejected: float | None = None
    final_loss: float | None = None
    failed_step: int | None = None
    seconds_per_iter: float | None = None  # after warm-up (CUDA-synchronised on GPU)
    train_seconds: float | None = None
    timed_iters: int | None = None
    warmup_iters: int | None = None
    # the final evaluation
    metric_value: float | None = None
    eval_fwd_nfe: int | None = None
    heldout_fwd_nfe: int | None = None
    heldout_bwd_nfe: int | None = None
    eval_seconds: float | None = None
    # metric passes (train.metric_pass_every): sums over the training-time passes, and the final passes
    steps_per_epoch: int | None = None
    metric_passes: int | None = None  # training-time passes
    pass_train_bwd_nfe: int | None = None  # the seminorm paper's BNFE: Σ train-set backward NFE over those passes
    pass_train_fwd_nfe: int | None = None
    pass_val_bwd_nfe: int | None = None
    pass_val_fwd_nfe: int | None = None
    pass_seconds: float | None = None
    final_test_bwd_nfe: int | None = None  # the final pass over the test set (its other splits: final_<split>_*)
    final_test_fwd_nfe: int | None = None
    best_step: int | None = None  # train.select_best: the training step after which the kept model's pass ran
    best_train_loss: float | None = None
    stopped_early: bool | None = None
    lr_final: float | None = None
    lr_reductions: int | None = None
    # memory and the gradient check
    graph_mib: float | None = None
    peak_cuda_mib: float | None = None
    peak_rss_mib: float | None = None
    grad_rel_error: float | None = None
    grad_abs_error_sum: float | None = None
    # provenance
    device: str | None = None
    device_name: str | None = None
    hostname: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    wall_seconds: float | None = None
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def update(self, **values: Any) -> None:
        """Set fields by name; names that are not fields go into `extra`."""
        for key, value in values.items():
            if key in _FIELDS:
                setattr(self, key, value)
            else:
                self.extra[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in _FIELDS else self.extra.get(key, default)

    def __getitem__(self, key: str) -> Any:
        """result["bwd_nfe"] reads as result.json does (fields and `extra` alike)."""
        if key in _FIELDS:
            return getattr(self, key)
        return self.extra[key]

    def __contains__(self, key: str) -> bool:
        return key in _FIELDS or key in self.extra

    def as_json(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        row["status"] = Status(self.status).value
        return {**self.extra, **row}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        """From a parsed result.json: fields it lacks keep their defaults (None), other keys go to `extra`."""
        result = cls(**{k: v for k, v in data.items() if k in _FIELDS})
        result.status = Status(result.status)  # a ValueError for a status that is not one
        result.extra = {k: v for k, v in data.items() if k not in _FIELDS}
        return result


_FIELDS = {f.name for f in dataclasses.fields(RunResult)} - {"extra"}
