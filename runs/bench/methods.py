"""Gradient methods side by side (`python -m runs.bench --section methods`): for a small CNF, the width-2000
nested-spheres model and the sines model, the cost of one training gradient under every method.

Per problem and method: ms per iteration (median over interleaved repeats; forward + backward at fixed parameters,
the same batches for every method), forward/backward NFE per iteration, memory (`graph_mib`: what autograd holds
between forward and backward, on every device; CUDA peak above the model on GPU), and the ratio of ms/iteration to
the continuous adjoint with the default norm, all measured in one process on one device.

Rows: direct, adjoint, adjoint + seminorm, gq, gq + seminorm, gq with the paper's node rule; the methods issue 8
adds (checkpoint, mali, reversible, reversible_heun) when their `conf/method/<name>.yaml` exists; and the authors'
own GQ implementation (`torch_gq_adjoint` from a-norcliffe/torch_gq_adjoint, their gtol 0.1, their dopri5) when it
is importable. It is never vendored: install it outside the repository, e.g. put its checkout on a .pth path of the
venv.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from runs.bench.common import CONF_DIR, compose_config, synchronizer
from runs.build import ConfigError, build_method, build_task, seed_everything
from runs.memory import MIB, saved_tensor_meter
from solvers.base import trainable
from solvers.nfe import NFECounter

PROBLEMS = {
    "small CNF (cnf_toy pinwheel, hidden 64, batch 100, rtol 1e-3 atol 1e-6)": [
        "task=cnf_toy", "task.hidden=64", "task.num_layers=3", "task.batch_size=100", "task.test_size=100",
        "solver.rtol=1e-3", "solver.atol=1e-6"],
    "nested spheres, width 2000 (batch 200, rtol = atol = 1e-3)": [
        "task=nested_spheres", "task.width=2000", "task.batch_size=200", "solver.rtol=1e-3", "solver.atol=1e-3"],
    "sines, width 1000 (10 regular times, 15 curves, rtol = atol = 1e-3)": [
        "task=sines", "task.width=1000", "solver.rtol=1e-3", "solver.atol=1e-3"],
}
# (row label, method config, norm, extra overrides)
METHODS = [("direct", "direct", "default", []), ("adjoint", "adjoint", "default", []),
           ("adjoint", "adjoint", "seminorm", []), ("gq", "gq", "default", []), ("gq", "gq", "seminorm", []),
           ("gq, paper rule (gtol 0.1, min_nodes 1)", "gq", "default", ["method.gtol=0.1", "method.min_nodes=1"]),
           ("checkpoint", "checkpoint", "default", []), ("mali", "mali", "default", []),
           ("reversible", "reversible", "default", []), ("reversible_heun", "reversible_heun", "default", [])]
AUTHORS = "gq (authors' torch_gq_adjoint)"
BASELINE = "adjoint"


def check_problems(chosen: list[int]) -> None:
    """Refuse a --problem number that is not in PROBLEMS, naming the valid ones (before any section runs)."""
    for k in chosen:
        if not 1 <= k <= len(PROBLEMS):
            raise SystemExit(f"--problem {k} is not a problem of the methods section; choose one of "
                             + ", ".join(f"{i} ({title.split(' (')[0]})" for i, title in enumerate(PROBLEMS, 1)))


class _AuthorsField(nn.Module):
    """The authors' code reads `func.nfe` (reset to 0 by them) for its node rule; our counter counts as well."""

    def __init__(self, counted: Any, field: nn.Module) -> None:
        super().__init__()
        self.counted, self.inner, self.nfe = counted, field, 0

    def forward(self, t, y):
        self.nfe += 1
        return self.counted(t, y)


class AuthorsGQ:
    """a-norcliffe/torch_gq_adjoint's odeint_adjoint_gq behind our `solve` interface (bench only)."""

    name, norm = AUTHORS, "default"

    def __init__(self, rtol: float, atol: float, gtol: float = 0.1) -> None:
        from torch_gq_adjoint import odeint_adjoint_gq  # noqa: PLC0415 - optional, never vendored

        self.odeint = odeint_adjoint_gq
        self.rtol, self.atol, self.gtol = rtol, atol, gtol
        self.nfe = NFECounter()

    def solve(self, field, y0, ts):
        module = _AuthorsField(self.nfe.wrap(field, True), field)
        return self.odeint(module, y0, ts, rtol=self.rtol, atol=self.atol, gtol=self.gtol, method="dopri5",
                           adjoint_params=trainable(field))

    def solve_sde(self, *args):
        raise ValueError("the authors' GQ solves ODEs only")


def authors_available() -> str | None:
    """None when importable, else why not."""
    try:
        import torch_gq_adjoint  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"not importable ({exc}); install a-norcliffe/torch_gq_adjoint outside the repo to add this row"
    return None


@dataclass
class Row:
    method: str
    norm: str
    ms: list[float]
    fwd: float = 0.0
    bwd: float = 0.0
    graph_mib: float | None = None
    cuda_mib: float | None = None
    error: str | None = None


def _iteration(task, method, step: int) -> None:
    loss = task.train_loss(step, method)
    loss.backward()
    task.model.zero_grad(set_to_none=True)


def _measure_memory(task, method, device: torch.device) -> tuple[float, float | None]:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    with saved_tensor_meter(task.model) as graph:
        loss = task.train_loss(0, method)
    loss.backward()
    task.model.zero_grad(set_to_none=True)
    cuda = None
    if device.type == "cuda":
        torch.cuda.synchronize()
        cuda = (torch.cuda.max_memory_allocated(device) - base) / MIB
    return graph["mib"], cuda


def run_problem(overrides: list[str], device: torch.device, repeats: int, iterations: int) -> list[Row]:
    setups = []
    for label, name, norm, extra in METHODS:
        if not (CONF_DIR / "method" / f"{name}.yaml").exists():
            continue
        cfg = compose_config(overrides + [f"method={name}", f"norm={norm}", "solver=dopri5", f"device={device}",
                                          "scale=paper", *extra])
        row = Row(label, norm, [])
        try:
            method = build_method(cfg)
        except ConfigError as exc:  # e.g. a fixed-step-only method on this adaptive problem: a row that says why
            row.error, method = f"n/a: {exc}"[:120], None
        setups.append((row, cfg, method))
    if authors_available() is None:
        setups.append((Row(AUTHORS, "default", []), setups[0][1],
                       AuthorsGQ(setups[0][1].solver.rtol, setups[0][1].solver.atol)))
    sync = synchronizer(device)
    tasks = {}
    for row, cfg, method in setups:
        if row.error:
            continue
        seed_everything(cfg.seed)  # every method starts from the same model, as a run would
        tasks[id(row)] = task = build_task(cfg, device, torch.float32)
        try:
            _iteration(task, method, 0)  # warm-up (vmap tracing, allocator)
            row.graph_mib, row.cuda_mib = _measure_memory(task, method, device)
            method.nfe.take()
        except Exception as exc:  # noqa: BLE001 - a method that fails on a problem is a row that says so
            row.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    for _ in range(repeats):  # interleaved: every method sees the same machine state
        for row, _cfg, method in setups:
            if row.error:
                continue
            task = tasks[id(row)]
            for step in range(1, iterations + 1):
                sync()
                start = time.perf_counter()
                _iteration(task, method, step)
                sync()
                row.ms.append(1000 * (time.perf_counter() - start))
            counts = method.nfe.take()
            row.fwd, row.bwd = counts.fwd_nfe / iterations, counts.bwd_nfe / iterations
    return [row for row, _cfg, _method in setups]


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render(title: str, rows: list[Row]) -> str:
    base = next((statistics.median(r.ms) for r in rows if r.method == BASELINE and r.norm == "default" and r.ms),
                None)
    lines = [f"### {title}", "", "| method | norm | ms/iteration | × adjoint | fwd NFE | bwd NFE | graph MiB | "
             "CUDA peak MiB | note |", "|:--|:--|--:|--:|--:|--:|--:|--:|:--|"]
    for r in rows:
        ms = statistics.median(r.ms) if r.ms else None
        ratio = None if ms is None or base is None else ms / base
        lines.append(f"| {r.method} | {r.norm} | {_fmt(ms, '.1f')} | {_fmt(ratio, '.2f')} | {r.fwd:.1f} | "
                     f"{r.bwd:.1f} | {_fmt(r.graph_mib, '.2f')} | {_fmt(r.cuda_mib, '.1f')} | {r.error or ''} |")
    return "\n".join(lines) + "\n"


def run(args) -> str:
    device = args.device
    iterations = getattr(args, "iterations", 2)
    parts = [f"## Gradient methods ({device}, {torch.get_num_threads()} thread(s); median ms per forward+backward "
             f"over {args.repeats} interleaved repeats x {iterations} iterations, fixed parameters; dopri5)", ""]
    missing = authors_available()
    if missing:
        parts += [f"Authors' GQ row skipped: {missing}.", ""]
    problems = list(PROBLEMS.items())
    chosen = getattr(args, "problem", None) or range(1, len(problems) + 1)
    for title, overrides in [problems[k - 1] for k in chosen]:
        parts.append(render(title, run_problem(overrides, device, args.repeats, iterations)))
    parts += ["- × adjoint: ms/iteration divided by the continuous adjoint's (default norm) on the same problem, "
              "same process, same device.",
              "- NFE per iteration; gq's backward NFE include its quadrature nodes (one evaluation per node, batched "
              "into vmapped calls).",
              "- graph MiB: tensors autograd saves between forward and backward (parameters excluded); CUDA peak: "
              "max_memory_allocated above what was allocated before the iteration (GPU only).",
              "- gq + seminorm equals gq + default: GQ's backward solve has no parameter channels for a norm to drop.",
              ""]
    return "\n".join(parts)
