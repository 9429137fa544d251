"""The harness's own overhead: the same CNF training problem (same seed, same batches, same solver calls) run
as a bare torchdiffeq loop and through `runs.loop.run` with NFE counting, the metrics log and checkpointing on.

Cost per iteration = wall time between the ends of consecutive training steps after warm-up, which includes
everything the harness does per step (counting, recording, the progress bar). One-time costs (building,
final evaluation, the result) are outside it. Repeats are interleaved, and the table reports the median over
all timed iterations, which a 2-core machine's occasional hiccups do not move.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchdiffeq

from record import read_metrics, step_rows
from runs.bench.common import compose_config, synchronizer
from runs.build import build_optimizer, build_task, seed_everything
from runs.loop import run as run_one

ITERATIONS = 40
WARMUP = 5
OVERRIDES = [
    "task=cnf_toy", "scale=quick", "method=adjoint", "norm=default", "solver=dopri5",
    "solver.rtol=1e-3", "solver.atol=1e-6", "task.hidden=64", "task.batch_size=256", "task.test_size=256",
    f"train.iterations={ITERATIONS}", f"train.warmup_iters={WARMUP}", "train.eval_every=0", "train.lr=1e-2",
    "train.grad_error=false", "train.eval_backward=false", "train.checkpoint_every=20", "logger=none",
    "progress=true",
]


class BareAdjoint:
    """torchdiffeq.odeint_adjoint called directly: no counting wrapper, torchdiffeq's own default norm."""

    def __init__(self, rtol: float, atol: float) -> None:
        self.rtol, self.atol = rtol, atol

    def solve(self, field, y0, ts):
        return torchdiffeq.odeint_adjoint(field, y0, ts, rtol=self.rtol, atol=self.atol, method="dopri5")


def _per_iteration(ends: list[float]) -> list[float]:
    """Durations of the timed iterations (each from the end of the previous step to the end of this one)."""
    return [b - a for a, b in zip(ends[WARMUP - 1 : -1], ends[WARMUP:])]


def bare_loop(cfg, device: torch.device) -> tuple[list[float], float]:
    seed_everything(cfg.seed)
    task = build_task(cfg, device, torch.float32)
    optimizer = build_optimizer(cfg, task.model)
    solver = BareAdjoint(cfg.solver.rtol, cfg.solver.atol)
    sync = synchronizer(device)
    ends = []
    for step in range(ITERATIONS):
        optimizer.zero_grad(set_to_none=True)
        loss = task.train_loss(step, solver)
        value = loss.item()
        loss.backward()
        optimizer.step()
        sync()
        ends.append(time.perf_counter())
    return _per_iteration(ends), value


def harness_loop(cfg, device: torch.device) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_one(cfg, Path(tmp))
        rows = step_rows(read_metrics(tmp))
    ends = [row["elapsed"] for row in rows]
    assert result["status"] == "ok", result["error"]
    return _per_iteration(ends), result["final_loss"]


def run_section(device: torch.device, repeats: int) -> str:
    cfg = compose_config(OVERRIDES + [f"device={device}"])
    bare_a, harness, bare_b = [], [], []
    for _ in range(repeats):  # A B A: the two bare runs bracket the harness and show the noise floor
        durations, bare_loss = bare_loop(cfg, device)
        bare_a += durations
        durations, harness_loss = harness_loop(cfg, device)
        harness += durations
        bare_b += bare_loop(cfg, device)[0]
    bare = statistics.median(bare_a + bare_b)
    ratio = statistics.median(harness) / bare
    noise = abs(statistics.median(bare_a) / statistics.median(bare_b) - 1)
    return "\n".join([
        f"## Harness overhead ({device}, {torch.get_num_threads()} thread(s); CNF toy, hidden 64, batch 256, adjoint, "
        f"dopri5 rtol 1e-3 atol 1e-6; {ITERATIONS} iterations, {WARMUP} warm-up; median over the timed iterations "
        f"of {repeats} interleaved repeats)",
        "",
        "| loop | s/iteration | final loss |",
        "|:--|--:|--:|",
        f"| bare torchdiffeq | {bare:.4f} | {bare_loss:.6f} |",
        f"| runs.train (counting + recording + progress bar + checkpoints) | {statistics.median(harness):.4f} | "
        f"{harness_loss:.6f} |",
        "",
        f"overhead ratio (harness / bare): **{ratio:.3f}** ({100 * (ratio - 1):+.1f}%); target <= 1.02. "
        f"Noise floor (bare vs bare, same run): {100 * noise:.1f}%. Equal final losses show both loops did the same "
        "computation.",
        "",
    ])


def run(args) -> str:
    return run_section(args.device, args.repeats)
