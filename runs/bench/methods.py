"""Gradient methods side by side (`python -m runs.bench --section methods`): the cost and the accuracy of one
training gradient under every method, on a small CNF, the GQ paper's nested-spheres model (widths 2000 and 100) and
its sines model, all measured in one process on one device.

Per problem, two tables:
- *methods*: every method, each row with ms per iteration (forward + backward at fixed parameters, the same batches
  for every method), its noise, the ratio to torchdiffeq's adjoint and to the row it is paired with (named in the
  `vs` column), forward/backward NFE, the relative errors of dL/dtheta (the field's parameters) and dL/dy0 (the
  solve's initial state) against float64 direct backprop at tight tolerance (`grad_check.*`, rtol = atol = 1e-10)
  on the same batch, and memory (`graph MiB`: what autograd holds between forward and backward).
  The pairs say where a speed-up comes from: the harness's own adjoint (`adjoint_core`) without the warm start
  against torchdiffeq's adjoint (equal terms: the same method and rules, ~1.0), the warm start on the adjoint,
  GQ without the warm start against the adjoint without it, GQ with it against the adjoint with it. `gq + seminorm`
  does exactly what `gq` does (GQ has no parameter channels for a norm to drop): a control for the noise.
- *GQ ablation*: warm start on/off x node batching (vmap) on/off x node rule (ours: gtol 0.2, min_nodes 3; the
  paper's: gtol 0.1, min_nodes 1), and ours with the [y, a] solve at the forward tolerance (adjoint_tol_factor 1,
  warm start on/off), each against GQ at its defaults.

Timing: `repeats` interleaved rounds (the order of the rows rotates each round) of `iterations` iterations per row.
A ratio is the median of the paired per-sample ratios (sample k of round r of one row over sample k of round r of
the other), with a 95% bootstrap interval of that median; `noise` is half the interquartile range of a row's
samples over their median. The gradient errors come from one extra (untimed) float64 pass per row.

The authors' own GQ implementation (`torch_gq_adjoint` from a-norcliffe/torch_gq_adjoint, their gtol 0.1, their
dopri5) gets a row when it is importable. It is never vendored: install it outside the repository, e.g. put its
checkout on a .pth path of the venv.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from runs.bench.common import CONF_DIR, compose_config, synchronizer
from runs.build import ConfigError, build_method, build_task, seed_everything
from runs.gradcheck import reference_method, relative_error
from runs.memory import MIB, saved_tensor_meter
from solvers.base import trainable
from solvers.nfe import NFECounter

DEFAULT_REPEATS = 10  # rounds (runs.bench's --repeats); the other sections keep their own default
PROBLEMS = {
    "small CNF (cnf_toy pinwheel, hidden 64, 3 layers, T 0.5, batch 100, rtol 1e-3 atol 1e-6)": [
        "task=cnf_toy", "task.hidden=64", "task.num_layers=3", "task.batch_size=100", "task.test_size=100",
        "solver.rtol=1e-3", "solver.atol=1e-6"],
    "nested spheres, width 2000 (batch 200, rtol = atol = 1e-3)": [
        "task=nested_spheres", "task.width=2000", "task.batch_size=200", "solver.rtol=1e-3", "solver.atol=1e-3"],
    "sines, width 1000 (10 regular times, 15 curves, rtol = atol = 1e-3)": [
        "task=sines", "task.width=1000", "solver.rtol=1e-3", "solver.atol=1e-3"],
    "nested spheres, width 100 (batch 200, rtol = atol = 1e-3)": [
        "task=nested_spheres", "task.width=100", "task.batch_size=200", "solver.rtol=1e-3", "solver.atol=1e-3"],
}
# Where each problem stands against the GQ paper's own settings (authors' repository a-norcliffe/torch_gq_adjoint,
# analysis/reference/gq.md).
PAPER_SIZES = {
    "small CNF": "not a GQ-paper problem (the paper and its code have no CNF); FFJORD's toy settings (T = 0.5, "
                 "batch 100, tanh concat-squash 64-64-64, exact divergence)",
    "nested spheres, width 2000": "the paper's model and sizes: time-dependent MLP 6 -> 2000 -> 2000 -> 5 (one "
                                  "2000x2000 layer, as the authors' mlp_t), Softplus, batch 200, T = 1, tol 1e-3; "
                                  "the paper's figure sweeps widths 5 to 3000",
    "sines, width 1000": "the paper's model and sizes: second-order MLP 2 -> 1000 -> 1000 -> 1, 15 curves, 10 "
                         "regular times on [0, 2 pi], tol 1e-3; the paper's figure sweeps widths 5 to 2000",
    "nested spheres, width 100": "the paper's model at width 100 (a point of its width sweep)",
}


@dataclass(frozen=True)
class Variant:
    """One row: a method config with its norm and overrides, and the row its time is compared with."""

    label: str
    method: str
    norm: str = "default"
    overrides: tuple[str, ...] = ()
    against: str | None = "adjoint"


COLD = ("method.warm_start=false",)
PAPER_RULE = ("method.gtol=0.1", "method.min_nodes=1")
NO_BATCH = ("method.batch_nodes=false",)
BASELINE = "adjoint"
GQ = "gq"
METHODS = [
    Variant("direct", "direct"),
    Variant(BASELINE, "adjoint", against=None),
    Variant("adjoint + seminorm", "adjoint", "seminorm"),
    Variant("adjoint_core, no warm start", "adjoint_core", overrides=COLD),
    Variant("adjoint_core, warm start", "adjoint_core", against="adjoint_core, no warm start"),
    Variant("gq, no warm start", "gq", overrides=COLD, against="adjoint_core, no warm start"),
    Variant(GQ, "gq", against="adjoint_core, warm start"),
    Variant("gq + seminorm (control: the computation of gq)", "gq", "seminorm", against=GQ),
    Variant("checkpoint", "checkpoint"), Variant("mali", "mali"), Variant("reversible", "reversible"),
    Variant("reversible_heun", "reversible_heun"),
]
# The GQ ablation: (warm start, node batching, node rule) -> row label; the two main-table GQ rows are reused.
ABLATION: dict[tuple[str, str, str, str], str] = {}
for _warm in ("on", "off"):
    for _batch in ("on", "off"):
        for _rule in ("ours", "paper"):
            _key = (_warm, _batch, _rule, "0.1")
            if _key == ("on", "on", "ours", "0.1"):
                ABLATION[_key] = GQ
            elif _key == ("off", "on", "ours", "0.1"):
                ABLATION[_key] = "gq, no warm start"
            else:
                ABLATION[_key] = f"gq: warm start {_warm}, batching {_batch}, rule {_rule}"
                METHODS.append(Variant(ABLATION[_key], "gq", overrides=(COLD if _warm == "off" else ())
                                       + (NO_BATCH if _batch == "off" else ()) + (PAPER_RULE if _rule == "paper" else ()),
                                       against=GQ))
for _warm in ("on", "off"):  # our rule with the [y, a] solve at the forward tolerance (as the authors' code)
    ABLATION[(_warm, "on", "ours", "1")] = f"gq: warm start {_warm}, [y, a] solve at the forward tolerance"
    METHODS.append(Variant(ABLATION[(_warm, "on", "ours", "1")], "gq", against=GQ,
                           overrides=("method.adjoint_tol_factor=1",) + (COLD if _warm == "off" else ())))
AUTHORS = "gq (authors' torch_gq_adjoint)"


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
    label: str
    norm: str
    against: str | None = BASELINE
    ms: list[list[float]] = field(default_factory=list)  # per round, per iteration
    fwd: float = 0.0
    bwd: float = 0.0
    nodes: float | None = None
    graph_mib: float | None = None
    cuda_mib: float | None = None
    theta_error: float | None = None
    y0_error: float | None = None
    error: str | None = None

    @property
    def samples(self) -> list[float]:
        return [ms for round_ in self.ms for ms in round_]


class _InitialStates:
    """A method (or the reference) behind the task's `solve` calls, with each solve's initial state made a leaf
    whose gradient is kept (dL/dy0; the value, and the gradient flowing on to whatever made y0, are unchanged) and
    each solved field remembered (dL/dtheta is taken for its parameters)."""

    def __init__(self, method: Any) -> None:
        self.method, self.leaves, self.fields = method, [], []

    def solve(self, field, y0, ts, **kwargs):
        leaf = y0.detach().requires_grad_(True)
        self.leaves.append(leaf)
        if all(field is not f for f in self.fields):
            self.fields.append(field)
        return self.method.solve(field, leaf + (y0 - y0.detach()), ts, **kwargs)

    def solve_sde(self, *args):
        raise ValueError("the methods bench times ODE problems only")

    def gradients(self, task) -> tuple[torch.Tensor, torch.Tensor]:
        """(dL/dtheta, dL/dy0), each flattened, from the task's loss at step 0."""
        loss = task.train_loss(0, self)
        params = [p for f in self.fields for p in trainable(f)]
        grads = torch.autograd.grad(loss, params + self.leaves, allow_unused=True)
        flat = [(torch.zeros_like(x) if g is None else g).reshape(-1) for x, g in zip(params + self.leaves, grads)]
        return torch.cat(flat[: len(params)]), torch.cat(flat[len(params):])


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


def _setups(overrides: list[str], device: torch.device) -> list[tuple[Row, Any, Any]]:
    setups = []
    for variant in METHODS:
        if not (CONF_DIR / "method" / f"{variant.method}.yaml").exists():
            continue
        cfg = compose_config(overrides + [f"method={variant.method}", f"norm={variant.norm}", "solver=dopri5",
                                          f"device={device}", "scale=paper", *variant.overrides])
        row = Row(variant.label, variant.norm, variant.against)
        try:
            method = build_method(cfg)
        except ConfigError as exc:  # e.g. a fixed-step-only method on this adaptive problem: a row that says why
            row.error, method = f"n/a: {exc}"[:120], None
        setups.append((row, cfg, method))
    if authors_available() is None:
        cfg = setups[0][1]
        setups.append((Row(AUTHORS, "default", against=GQ), cfg, AuthorsGQ(cfg.solver.rtol, cfg.solver.atol)))
    return setups


def _gradient_errors(setups, device: torch.device) -> None:
    """Each row's dL/dtheta and dL/dy0 error in float64, against the reference, on the batch of step 0."""
    cfg = setups[0][1]
    base = build_task(cfg, device, torch.float32)
    task = build_task(cfg, device, torch.float64)
    task.model.load_state_dict(base.model.state_dict())  # the timed run's parameters
    ref_theta, ref_y0 = _InitialStates(reference_method(cfg)).gradients(task)
    for row, _cfg, method in setups:
        if row.error:
            continue
        try:
            theta, y0 = _InitialStates(method).gradients(task)
        except Exception as exc:  # noqa: BLE001 - a method that fails in float64 still has its timing row
            row.error = f"float64 pass: {type(exc).__name__}: {exc}".splitlines()[0][:120]
            continue
        row.theta_error, row.y0_error = relative_error(theta, ref_theta), relative_error(y0, ref_y0)
        method.nfe.take()


def run_problem(overrides: list[str], device: torch.device, repeats: int, iterations: int,
                errors: bool = True) -> list[Row]:
    setups = _setups(overrides, device)
    if errors:
        _gradient_errors(setups, device)
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
    live = [(row, method) for row, _cfg, method in setups if not row.error]
    nodes: dict[int, list[int]] = {id(row): [] for row, _ in live}
    for r in range(repeats):  # interleaved, rotating the order: every method sees the same machine state
        for row, method in live[r % len(live):] + live[: r % len(live)]:
            task, times = tasks[id(row)], []
            for step in range(1, iterations + 1):
                sync()
                start = time.perf_counter()
                _iteration(task, method, step)
                sync()
                times.append(1000 * (time.perf_counter() - start))
                if getattr(method, "last_nodes", None):
                    nodes[id(row)].append(sum(method.last_nodes))
            row.ms.append(times)
    for row, method in live:
        counts = method.nfe.take()
        n = repeats * iterations
        row.fwd, row.bwd = counts.fwd_nfe / n, counts.bwd_nfe / n
        row.nodes = statistics.mean(nodes[id(row)]) if nodes[id(row)] else None
    return [row for row, _cfg, _method in setups]


def ratio(row: Row, other: Row, resamples: int = 2000) -> tuple[float, float, float] | None:
    """Median of the paired per-sample ratios row/other and its 95% bootstrap interval (None without samples)."""
    a, b = row.samples, other.samples
    if not a or len(a) != len(b):
        return None
    ratios = np.asarray(a) / np.asarray(b)
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(ratios, size=(resamples, len(ratios)), replace=True), axis=1)
    return float(np.median(ratios)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def noise(row: Row) -> float | None:
    """Half the interquartile range of the row's samples over their median."""
    if len(row.samples) < 2:
        return None
    q1, q2, q3 = np.percentile(row.samples, [25, 50, 75])
    return float((q3 - q1) / 2 / q2)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _fmt_ratio(value: tuple[float, float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:.2f} [{value[1]:.2f}, {value[2]:.2f}]"


def render(title: str, rows: list[Row]) -> str:
    by = {r.label: r for r in rows}
    base = by.get(BASELINE)
    lines = [f"### {title}", ""]
    paper = next((text for key, text in PAPER_SIZES.items() if title.startswith(key)), None)
    if paper:
        lines += [f"Against the paper: {paper}.", ""]
    ablated = set(ABLATION.values()) - {GQ, "gq, no warm start"}
    lines += ["| method | ms/iter | noise | × adjoint [95% CI] | vs | × vs [95% CI] | fwd NFE | bwd NFE | "
              "dL/dθ rel. err. | dL/dy0 rel. err. | graph MiB | CUDA peak MiB | note |",
              "|:--|--:|--:|--:|:--|--:|--:|--:|--:|--:|--:|--:|:--|"]
    for r in rows:
        if r.label in ablated:
            continue
        ms = statistics.median(r.samples) if r.samples else None
        to_base = ratio(r, base) if base is not None and r is not base else None
        pair = by.get(r.against) if r.against else None
        to_pair = ratio(r, pair) if pair is not None and pair is not base else None
        lines.append(f"| {r.label} | {_fmt(ms, '.1f')} | {_fmt(noise(r), '.0%')} | {_fmt_ratio(to_base)} | "
                     f"{r.against if pair is not None and pair is not base else '—'} | {_fmt_ratio(to_pair)} | "
                     f"{r.fwd:.1f} | {r.bwd:.1f} | {_fmt(r.theta_error, '.2e')} | {_fmt(r.y0_error, '.2e')} | "
                     f"{_fmt(r.graph_mib, '.2f')} | {_fmt(r.cuda_mib, '.1f')} | {r.error or ''} |")
    lines += ["", f"GQ ablation ({title.split(' (')[0]}): each row against GQ at its defaults (warm start on, node "
              "batching on, our node rule, [y, a] solve at 0.1 x the forward tolerance).", "",
              "| warm start | node batching | node rule | [y, a] tolerance | ms/iter | noise | × gq [95% CI] | "
              "bwd NFE | nodes/iter | dL/dθ rel. err. | dL/dy0 rel. err. | note |",
              "|:--|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|:--|"]
    gq = by.get(GQ)
    for (warm, batch, rule, factor), label in ABLATION.items():
        r = by.get(label)
        if r is None:
            continue
        ms = statistics.median(r.samples) if r.samples else None
        rule_text = "ours (gtol 0.2, min 3)" if rule == "ours" else "paper (gtol 0.1, min 1)"
        lines.append(f"| {warm} | {batch} | {rule_text} | {factor} x forward | {_fmt(ms, '.1f')} | "
                     f"{_fmt(noise(r), '.0%')} | {'1 (reference)' if r is gq else _fmt_ratio(ratio(r, gq))} | "
                     f"{r.bwd:.1f} | {_fmt(r.nodes, '.1f')} | {_fmt(r.theta_error, '.2e')} | "
                     f"{_fmt(r.y0_error, '.2e')} | {r.error or ''} |")
    return "\n".join(lines) + "\n"


def run(args) -> str:
    device = args.device
    iterations = getattr(args, "iterations", 2)
    parts = [f"## Gradient methods ({device}, {torch.get_num_threads()} thread(s); {args.repeats} interleaved rounds "
             f"x {iterations} iterations per row, forward + backward at fixed parameters; dopri5)", ""]
    missing = authors_available()
    if missing:
        parts += [f"Authors' GQ row skipped: {missing}.", ""]
    problems = list(PROBLEMS.items())
    chosen = getattr(args, "problem", None) or range(1, len(problems) + 1)
    for title, overrides in [problems[k - 1] for k in chosen]:
        parts.append(render(title, run_problem(overrides, device, args.repeats, iterations)))
    parts += ["- ms/iter: median over every sample; noise: half the interquartile range of the samples over the "
              "median. × adjoint: against torchdiffeq's adjoint (default norm); × vs: against the row named in "
              "`vs`. Each ratio is the median of the paired per-sample ratios (same round, same iteration index), "
              "with a 95% bootstrap interval of that median; a ratio whose interval holds 1 is no difference.",
              "- NFE per iteration; GQ's backward NFE include its quadrature nodes (one evaluation per node, "
              "batched into vmapped calls when node batching is on; the CNF's field cannot be vmapped, so batching "
              "changes nothing there).",
              "- dL/dθ (the field's parameters) and dL/dy0 (the solve's initial state): relative L2 error of the "
              "method's gradient in float64 against float64 direct backprop at rtol = atol = 1e-10 (grad_check), "
              "same parameters, same batch (step 0).",
              "- graph MiB: tensors autograd saves between forward and backward (parameters excluded); CUDA peak: "
              "max_memory_allocated above what was allocated before the iteration (GPU only).",
              ""]
    return "\n".join(parts)
