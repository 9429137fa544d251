"""One run, start to finish: build, resume if a checkpoint exists, train, evaluate, record.

A run that goes wrong (NaN loss, solver failure, out of memory, an exception) is a *result*, not a crash: its
status and error are written to its result (record.RunResult) and returned, so a sweep goes on. Only Ctrl-C and
kill signals stop the process, and the last checkpoint lets the same command resume.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from record import (
    CHECKPOINT,
    ERROR_LOG,
    METRICS,
    PREVIOUS_CHECKPOINT,
    EvalRow,
    RunDir,
    RunResult,
    Status,
    StepRow,
    Unreadable,
    config_fingerprint,
    read_result,
)
from record.lock import RunLock
from runs.build import (
    ConfigError,
    build_method,
    build_optimizer,
    build_task,
    check_config,
    check_passes,
    resolve_device,
    resolve_dtype,
    seed_everything,
)
from runs.checkpoints import load_checkpoint, save_checkpoint
from runs.gradcheck import gradient_errors
from runs.loggers import NullLogger, make_logger
from runs.memory import CudaPeak, peak_rss_mib, saved_tensor_meter
from runs.passes import MetricPasses, PassDiverged
from runs.provenance import environment
from runs.resume import StopSignals
from solvers.base import GradientMethod
from solvers.errors import SolverFailed, StateDiverged, translated
from solvers.nfe import NFECounts
from tasks.base import Task

log = logging.getLogger(__name__)


class Diverged(RuntimeError):
    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"loss is {loss} at step {step}")
        self.step = step


def classify(exc: BaseException) -> Status:
    """The result status of an exception raised by a run, from its type (torchdiffeq's assertions translated first)."""
    exc = translated(exc)
    if isinstance(exc, (Diverged, StateDiverged, PassDiverged)):
        return Status.DIVERGED
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return Status.OOM
    if isinstance(exc, SolverFailed):
        return Status.SOLVER_FAILED
    return Status.FAILED


@dataclass
class Progress:
    """Everything the summary needs, carried through checkpoints so a resumed run reports whole-run numbers."""

    step: int = 0  # training steps completed
    nfe: dict[str, int] = field(default_factory=lambda: NFECounts().as_dict())
    train_seconds: float = 0.0
    timed_seconds: float = 0.0  # steps after warm-up
    timed_steps: int = 0
    eval_seconds: float = 0.0
    last_loss: float = math.nan
    last_eval: dict[str, Any] = field(default_factory=dict)
    graph_mib: float | None = None
    failed_step: int | None = None


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The fields that say which grid point a run is."""
    solver = cfg.solver
    return {
        "task": cfg.task.name,
        "method": cfg.method.name,
        "norm": cfg.norm.name,
        "solver": solver.name,
        "rtol": solver.get("rtol"),
        "atol": solver.get("atol"),
        "step_size": solver.get("step_size"),
        "dtype": cfg.dtype,
        "seed": cfg.seed,
        "scale": cfg.scale.name,
        "protocol": cfg.protocol.name,
    }


class Trainer:
    def __init__(self, cfg: DictConfig, task: Task, method: GradientMethod, record: RunDir, logger: NullLogger,
                 device: torch.device) -> None:
        self.cfg, self.task, self.method, self.record, self.logger = cfg, task, method, record, logger
        self.device = device
        self.optimizer = build_optimizer(cfg, task.model)
        self.passes = MetricPasses(cfg.train, task, method, self.optimizer, record)
        self.progress = Progress()
        self.cuda_peak = CudaPeak(device)
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.started = time.perf_counter()

    # checkpoints
    def save(self) -> None:
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        save_checkpoint(self.record.path, {
            "model": self.task.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": asdict(self.progress),
            "passes": self.passes.state_dict(),
            "rng": rng,
            "config_fingerprint": config_fingerprint(self.cfg),
        })

    def restore(self, state: dict[str, Any]) -> None:
        self.task.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.progress = Progress(**state["progress"])
        if "passes" in state:
            self.passes.load_state_dict(state["passes"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    # training
    def fit(self, stop: StopSignals | None = None) -> None:
        train = self.cfg.train
        state = load_checkpoint(self.record.path)
        if state is not None and state.get("config_fingerprint") not in (None, config_fingerprint(self.cfg)):
            log.warning("%s was written under a different config: starting afresh", CHECKPOINT)
            state = None
        if state is not None:
            self.restore(state)
            log.info("resuming from step %d", self.progress.step)
        for line in self.record.truncate_metrics(before_step=self.progress.step):
            log.warning(line)
        bar = tqdm(total=train.iterations, initial=self.progress.step, disable=not self.cfg.progress,
                   desc=f"{self.cfg.task.name} {self.method.name}/{self.method.norm}", mininterval=0.5,
                   dynamic_ncols=True, leave=False)
        for step in range(self.progress.step, train.iterations):
            if self.passes.stopped:  # train.stop_after_epochs (also after resuming a run that had stopped)
                break
            row = self.train_step(step)
            bar.update()
            bar.set_postfix(loss=f"{row.loss:.4g}", nfe=f"{row.fwd_nfe}/{row.bwd_nfe}", refresh=False)
            done = step + 1
            self.passes.after_step(step)  # a metric pass, where train.metric_pass_every says one is due
            if train.eval_every and done % train.eval_every == 0 and done < train.iterations:
                self.evaluate(step)
            if train.checkpoint_every and done % train.checkpoint_every == 0:
                self.save()
            if stop is not None:
                stop.check(self.save, done)  # SIGTERM / SIGUSR1 / SIGUSR2: checkpoint here, then stop or requeue
        bar.close()
        last = self.progress.step - 1
        # the best model (train.select_best) and its final passes, unless done before an interruption
        finished = self.passes.finish(self.progress.step)
        if finished or self.progress.last_eval.get("step") != last:  # else done before an interruption
            self.evaluate(last)
        self.save()

    def train_step(self, step: int) -> StepRow:
        p, train = self.progress, self.cfg.train
        self.method.nfe.take()
        meter = saved_tensor_meter(self.task.model) if step == 0 and train.warmup_iters > 0 else None
        self.sync()
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        if meter is None:
            loss = self.task.train_loss(step, self.method)
        else:
            with meter as graph:
                loss = self.task.train_loss(step, self.method)
        loss = self.inject_fault(step, loss)
        value = loss.item()
        if not math.isfinite(value):
            p.failed_step = step
            raise Diverged(step, value)
        loss.backward()
        self.optimizer.step()
        self.sync()
        seconds = time.perf_counter() - start
        counts = self.method.nfe.take()
        if meter is not None:
            p.graph_mib = graph["mib"]
        p.step = step + 1
        p.nfe = (NFECounts(**p.nfe) + counts).as_dict()
        p.train_seconds += seconds
        if step >= train.warmup_iters:
            p.timed_seconds += seconds
            p.timed_steps += 1
        p.last_loss = value
        row = StepRow(step=step, loss=value, step_seconds=seconds, elapsed=time.perf_counter() - self.started,
                      warmup=step < train.warmup_iters, **counts.as_dict())
        self.record.append_metrics(row)
        self.logger.log(vars(row), step)
        return row

    def inject_fault(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        fault = self.cfg.fault
        if fault.kind is None or step != fault.step:
            return loss
        if fault.kind == "nan_loss":
            return loss * math.nan
        if fault.kind == "preempt":  # what SLURM/submitit send before pre-emption or the time limit
            os.kill(os.getpid(), signal.SIGUSR2)
            return loss
        if fault.kind == "oom":
            raise torch.OutOfMemoryError(f"simulated out of memory at step {step} (fault.kind=oom)")
        raise RuntimeError(f"simulated error at step {step} (fault.kind=error)")

    @torch.no_grad()
    def _metrics(self) -> dict[str, float]:
        return self.task.evaluate(self.method)

    def evaluate(self, step: int) -> EvalRow:
        self.cuda_peak.pause()
        self.sync()
        start = time.perf_counter()
        self.task.model.eval()
        self.method.nfe.take()
        metrics = self._metrics()
        row = EvalRow(step=step, metrics=metrics, eval_fwd_nfe=self.method.nfe.take().fwd_nfe)
        if self.cfg.train.eval_backward:
            loss = self.task.eval_loss(self.method)
            if loss is not None:
                loss.backward()
                counts = self.method.nfe.take()
                row.heldout_fwd_nfe, row.heldout_bwd_nfe = counts.fwd_nfe, counts.bwd_nfe
                self.task.model.zero_grad(set_to_none=True)
        self.task.model.train()
        self.sync()
        self.progress.eval_seconds += time.perf_counter() - start
        self.progress.last_eval = row.as_json()
        self.record.append_metrics(row)
        self.logger.log({f"eval/{k}": v for k, v in row.as_json().items() if k != "step"}, step)
        self.cuda_peak.resume()
        return row

    def summary(self) -> dict[str, Any]:
        p = self.progress
        n = max(p.step, 1)
        per_iter = {k: v / n for k, v in p.nfe.items()}  # record.NFE_FIELDS
        last = {k: v for k, v in p.last_eval.items() if k not in ("step", "split")}
        return {
            "iterations": p.step,
            **per_iter,
            "final_loss": p.last_loss,
            **last,
            "metric_value": p.last_eval.get(self.task.metric),
            "seconds_per_iter": p.timed_seconds / p.timed_steps if p.timed_steps else p.train_seconds / n,
            "train_seconds": p.train_seconds,
            "eval_seconds": p.eval_seconds,
            "timed_iters": p.timed_steps,
            "warmup_iters": self.cfg.train.warmup_iters,
            "graph_mib": p.graph_mib,
            "peak_cuda_mib": self.cuda_peak.mib(),
            "failed_step": p.failed_step,
            **self.passes.summary(),
        }


def run(cfg: DictConfig, run_dir: Path) -> RunResult:
    """Run (or resume, or skip as already done) the run `cfg` in `run_dir`; return its result. Raises `RunLocked`
    at once when another process is running the same directory, and `RecordWriteError` when not even the result
    can be written."""
    record = RunDir(run_dir)
    with RunLock(run_dir):
        return _run(cfg, record)


def _run(cfg: DictConfig, record: RunDir) -> RunResult:
    run_dir = record.path
    fingerprint = config_fingerprint(cfg)
    try:
        previous = read_result(run_dir)
    except Unreadable as exc:
        log.warning("%s; running again", exc)
        previous = None
    afresh = bool(cfg.rerun)
    if previous is not None and previous.status == Status.OK and not afresh:
        if previous.config_fingerprint in (None, fingerprint):
            log.info("already finished (its result says ok): %s", run_dir)
            return previous
        log.warning("the finished result is from a different config (code or experiment file changed): running again")
        afresh = True
    if afresh:
        record.remove(CHECKPOINT, PREVIOUS_CHECKPOINT, METRICS)
    record.remove(ERROR_LOG)  # a traceback belongs to the attempt that wrote it
    record.retire_result()  # a failed result stays beside the new attempt (record.PREVIOUS_RESULT)
    wall_start = time.perf_counter()
    result = RunResult(**identity(cfg), run_dir=str(run_dir), config_fingerprint=fingerprint,
                       started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    try:
        check_config(cfg)
        device = resolve_device(cfg.device)
        dtype = resolve_dtype(cfg.dtype)
        seed_everything(cfg.seed)
        task = build_task(cfg, device, dtype)
        check_passes(cfg, task)
        method = build_method(cfg)
    except ConfigError as exc:
        result.error = f"invalid config: {exc}"
        record.write_result(result)
        return result
    except Exception as exc:  # noqa: BLE001 - e.g. data that cannot be read: a result, so a sweep goes on
        return _failed_before_training(record, result, exc)
    result.update(dataset=task.dataset, metric=task.metric, lower_is_better=task.lower_is_better,
                  **method.describe(), **environment(device))
    try:
        logger = make_logger(cfg, run_dir)
        trainer = Trainer(cfg, task, method, record, logger, device)
    except Exception as exc:  # noqa: BLE001
        return _failed_before_training(record, result, exc)
    try:
        with StopSignals() as stop:
            trainer.fit(stop)
        result.status = Status.OK
    except Exception as exc:  # noqa: BLE001 - every failure of the run becomes its recorded status
        _record_failure(record, result, exc)
        if result.status == Status.OOM and device.type == "cuda":
            torch.cuda.empty_cache()
    result.update(**trainer.summary())
    if result.status == Status.OK and cfg.train.grad_error:
        try:
            result.update(**gradient_errors(cfg, task))
        except Exception as exc:  # noqa: BLE001 - a failed check leaves the run's own result intact
            log.warning("gradient-error check failed: %s", exc)
    result.update(wall_seconds=time.perf_counter() - wall_start, peak_rss_mib=peak_rss_mib(),
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    record.write_result(result)
    logger.finish(result.as_json())
    record.close()
    return result


def _record_failure(record: RunDir, result: RunResult, exc: Exception) -> None:
    result.status = classify(exc)
    result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    record.write_error(traceback.format_exc())


def _failed_before_training(record: RunDir, result: RunResult, exc: Exception) -> RunResult:
    _record_failure(record, result, exc)
    record.write_result(result)
    return result
