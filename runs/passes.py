"""Metric passes, the learning-rate plateau schedule and best-model selection: the training protocol of the seminorm
paper's code (FasterNeuralDiffEq train/train.py), as generic training settings any task with `Task.pass_batches` has.

- `train.metric_pass_every: N` (epochs; 0 = none). After the first epoch, then every N epochs, and after the last
  step, a *metric pass* runs over the whole training set and then the whole validation set: for every batch a
  forward pass, a backward pass of the batch's mean loss (its NFE counted; no optimiser step), then the gradients
  are dropped. Each pass is one `record.PassRow`; the run's result sums them (`pass_train_bwd_nfe` is the paper's
  BNFE: the training set's backward NFE summed over these passes, as the authors' parse_results.py sums it).
- `train.lr_plateau_patience: P` (null = a constant learning rate). `torch.optim.lr_scheduler.ReduceLROnPlateau`
  (patience P, torch's other defaults: factor 0.1, threshold 1e-4 relative) stepped once per metric pass with the
  training set's loss of that pass.
- `train.select_best: true`. At each metric pass the model is kept when its training-set loss is below the best so far
  by the authors' margin (loss x 1.0001 < best); after training the kept model is loaded, so the final passes and the
  test metric are the best model's.
- `train.stop_after_epochs: E` (0 = never). Stop training at a metric pass more than E epochs after the best one.

After training (whenever metric passes are on) *final passes* run over every split the task has (train, val, test),
forward and backward, on the model the run ends with. All state (pass sums, best model, scheduler, early stop) is in
`state_dict()`, saved in the run's checkpoint, so a resumed run goes on exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig

from record import PassRow, RunDir
from solvers.base import GradientMethod
from tasks.base import Task

TRAINING_SPLITS = ("train", "val")  # the splits of a training-time pass, in the authors' order
IMPROVEMENT = 1.0001  # train.py: a pass's loss counts as better when loss * 1.0001 < best


class PassDiverged(RuntimeError):
    """A metric pass's loss is not finite."""


@dataclass
class PassState:
    """What the passes carry through checkpoints."""

    passes: int = 0  # training-time passes done
    totals: dict[str, int] = field(default_factory=dict)  # "<split>_<fwd|bwd>_nfe" summed over those passes
    seconds: float = 0.0
    best_loss: float = math.inf
    best_step: int | None = None
    best_epoch: int | None = None
    stopped_at: int | None = None  # training steps done when training stopped early
    final: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> the final pass's numbers
    lr_reductions: int = 0


class MetricPasses:
    def __init__(self, train: DictConfig, task: Task, method: GradientMethod, optimizer: torch.optim.Optimizer,
                 record: RunDir) -> None:
        self.every = int(train.metric_pass_every)
        self.iterations = int(train.iterations)
        self.select_best = bool(train.select_best)
        self.stop_after = int(train.stop_after_epochs)
        self.task, self.method, self.optimizer, self.record = task, method, optimizer, record
        self.steps_per_epoch = task.steps_per_epoch() if self.every else 1
        patience = train.lr_plateau_patience
        self.scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=int(patience))
                          if patience is not None else None)
        self.state = PassState()
        self.best_model: dict[str, torch.Tensor] | None = None

    @property
    def enabled(self) -> bool:
        return self.every > 0

    # checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"state": asdict(self.state), "best_model": self.best_model,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = PassState(**saved["state"])
        self.best_model = saved["best_model"]
        if self.scheduler is not None and saved.get("scheduler") is not None:
            self.scheduler.load_state_dict(saved["scheduler"])

    # the schedule
    def epoch_of(self, done: int) -> int:
        """The (0-based) epoch that `done` training steps complete or are in."""
        return math.ceil(done / self.steps_per_epoch) - 1

    def due(self, done: int) -> bool:
        """Whether a metric pass follows the training step that makes `done` steps: at the end of epochs 0, N, 2N,
        ... (train.py: `epoch % 10 == 0`) and after the last step (`epoch == max_epochs - 1`)."""
        if not self.enabled:
            return False
        if done == self.iterations:
            return True
        return done % self.steps_per_epoch == 0 and self.epoch_of(done) % self.every == 0

    @property
    def stopped(self) -> bool:
        return self.state.stopped_at is not None

    # passes
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def run_split(self, split: str, step: int, final: bool) -> PassRow:
        """One metric pass over the whole `split`, recorded; `step` is the row's step (see `record.PassRow`)."""
        model = self.task.model
        model.eval()
        self.method.nfe.take()
        start = time.perf_counter()
        total, items, fwd, bwd = 0.0, 0, 0, 0
        sums: dict[str, float] = {}
        for loss, size, extra in self.task.pass_batches(split, self.method):
            value = loss.item()
            if not math.isfinite(value):
                raise PassDiverged(f"the {split}-set metric pass's loss is {value} after step {step}")
            loss.backward()
            counts = self.method.nfe.take()
            fwd, bwd = fwd + counts.fwd_nfe, bwd + counts.bwd_nfe
            model.zero_grad(set_to_none=True)
            total += value * size
            items += size
            for key, v in extra.items():
                sums[key] = sums.get(key, 0.0) + v
        model.train()
        seconds = time.perf_counter() - start
        row = PassRow(step=step, split=split, final=final, epoch=self.epoch_of(step if final else step + 1),
                      loss=total / max(items, 1), fwd_nfe=fwd, bwd_nfe=bwd, items=items, seconds=seconds,
                      lr=self._lr(), metrics={k: v / max(items, 1) for k, v in sums.items()})
        self.record.append_metrics(row)
        return row

    def after_step(self, step: int) -> list[PassRow]:
        """The training-time pass that follows training step `step` (0-based), if one is due: passes, best-model
        bookkeeping, the scheduler step and the early-stop check, in the order of the authors' train.py."""
        done = step + 1
        if not self.due(done):
            return []
        s = self.state
        rows = [self.run_split(split, step, final=False) for split in TRAINING_SPLITS
                if split in self.task.pass_splits]
        for row in rows:
            for kind, count in (("fwd", row.fwd_nfe), ("bwd", row.bwd_nfe)):
                key = f"{row.split}_{kind}_nfe"
                s.totals[key] = s.totals.get(key, 0) + count
            s.seconds += row.seconds
        s.passes += 1
        train_loss = rows[0].loss
        epoch = self.epoch_of(done)
        if train_loss * IMPROVEMENT < s.best_loss:
            s.best_loss, s.best_step, s.best_epoch = train_loss, step, epoch
            if self.select_best:
                self.best_model = {k: v.detach().clone() for k, v in self.task.model.state_dict().items()}
        if self.scheduler is not None:
            before = self._lr()
            self.scheduler.step(train_loss)
            s.lr_reductions += int(self._lr() < before)
        if self.stop_after and s.best_epoch is not None and epoch > s.best_epoch + self.stop_after:
            s.stopped_at = done
        return rows

    def finish(self, done: int) -> bool:
        """After training: load the best model (train.select_best), then final passes over every split. False (and
        nothing done) where passes are off or the final passes were done before an interruption."""
        if not self.enabled or self.state.final:
            return False
        if self.select_best and self.best_model is not None:
            self.task.model.load_state_dict(self.best_model)
        self.state.final = {}
        for split in self.task.pass_splits:
            row = self.run_split(split, done, final=True)
            self.state.final[split] = {"loss": row.loss, "fwd_nfe": row.fwd_nfe, "bwd_nfe": row.bwd_nfe,
                                       **row.metrics}
            self.state.seconds += row.seconds
        return True

    def summary(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        s = self.state
        out: dict[str, Any] = {
            "steps_per_epoch": self.steps_per_epoch,
            "metric_passes": s.passes,
            "pass_seconds": s.seconds,
            "best_step": s.best_step,
            "best_train_loss": s.best_loss if math.isfinite(s.best_loss) else None,
            "stopped_early": self.stopped,
            "lr_final": self._lr(),
            "lr_reductions": s.lr_reductions,
        }
        for split in TRAINING_SPLITS:
            for kind in ("fwd", "bwd"):
                key = f"{split}_{kind}_nfe"
                if key in s.totals:
                    out[f"pass_{key}"] = s.totals[key]
        for split, numbers in s.final.items():
            out.update({f"final_{split}_{key}": value for key, value in numbers.items()})
        return out
