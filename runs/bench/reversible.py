"""Cost of one gradient against the number of steps: reversible vs recursive checkpointing (both schedules) vs direct
backprop, eager and with the compiled stepping core, beside the authors' JAX reversible when it can be run.

The runtime-complexity problem of the reversible-solvers paper (v2, experiments/complexity): a scalar neural ODE
(Linear 1->10, tanh, 10->1), float64, midpoint base scheme, dt = 0.01, loss sum(y_T^2), one gradient = forward +
backward, at 100, 1000 and 3000 steps. Methods, all on the same discrete midpoint steps: reversible (lambda =
0.999), direct backprop through our RK loop (`direct_rk`) and through torchdiffeq (`direct`), and checkpointing with
2, 4 and 8 checkpoints under the `offline` binomial schedule (first descent stored while stepping forward) and the
`online` one (diffrax's RecursiveCheckpointAdjoint, the paper's baseline). Each memory-bounded method runs eagerly
and with `method.compile=true` (the compiled stepping core); compile time is reported apart from step time.

Each time is the median of max(`--repeats`, 5) gradients, interleaved across methods, after one warm-up gradient (it
measures the NFE and the graph, and compiles the compiled methods; its compile time is reported apart); a cell whose
warm-up gradient took longer than SLOW_SECONDS is timed once more only. The spread (min-max) is printed beside each
median, and beside each time the gradient's relative difference from its reference: backprop through the same steps
(direct_rk, eager) for the methods of the plain scheme, backprop through the same reversible solve for reversible.

Cost model, per mode: the per-step pieces B (a base step without a graph), GV (a base step with a graph and its
local VJP: a checkpointing U-turn), F and Rb (a reversible forward and backward step) are timed with the methods' own
step functions; one gradient costs n (F + Rb) reversible and n (B + GV) + R B checkpointing, R the steps its backward
pass recomputes (measured: backward steps less n). So reversible is the faster exactly when R / n > r* =
(F + Rb - B - GV) / B, and the verdict table says, per cell, what the model predicts and what was measured.

The authors' JAX reversible (github sammccallum/reversible; `runs/bench/authors_reversible.py`) runs in a
subprocess (jax and torch stay in separate processes, each with one thread), interleaved with the torch gradients at
the same weights: the Python of FASTGRAD_AUTHORS_PYTHON, or this one when it can import jax and their package.
The field has the authors' weights (PAPER_WEIGHTS: their VectorField(jr.PRNGKey(0))), y0 = 1. Also reported: how far
the reconstructing backward pass drifts from backprop through the same reversible solve as the steps grow (its
round-off is amplified by 1/lambda per step), ours for lambda = 0.999 (up to 10000 steps) and 0.9, theirs likewise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from runs.bench.common import synchronizer, timed
from runs.gradcheck import relative_error
from runs.memory import MIB, saved_tensor_meter
from solvers.base import SolverSpec, trainable
from solvers.checkpoint import RecursiveCheckpoint
from solvers.direct import DirectBackprop
from solvers.direct_rk import DirectRK
from solvers.nfe import report_step
from solvers.reversible import Reversible

STEPS = (100, 1000, 3000)
DT = 0.01
CHECKPOINTS = (2, 4, 8)
SCHEDULES = ("offline", "online")
MODES = ("eager", "compiled")
SLOW_SECONDS = 5.0  # a cell whose warm-up gradient takes longer is timed once more only
COUPLINGS = (0.999, 0.9)  # the default, and a smaller lambda whose reconstruction loses accuracy sooner
LONG_HORIZON = 10000  # the round-off is also measured this far (lambda 0.999), where it stops being small
WIDE = (256, 1024)  # (width, batch) of a field of the same shape large enough that arithmetic, not overhead, decides
AUTHORS = "reversible (authors' JAX)"
AUTHORS_SCRIPT = Path(__file__).with_name("authors_reversible.py")


# The paper's field: the authors' VectorField(jr.PRNGKey(0)) of experiments/complexity/complexity.py (equinox
# Linear layers, float64), its weights as equinox draws them (jax 0.10.2, equinox 0.13.8):
#   key1, key2 = jr.split(jr.PRNGKey(0)); eqx.nn.Linear(1, 10, key=key1), eqx.nn.Linear(10, 1, key=key2)
PAPER_WEIGHTS = {
    "W1": [-0.6819394983452414, 0.6443933281620655, 0.8726081059039186, 0.7130644597186171, 0.42498294449387464, 0.9274154091197611, -0.6452905614348095, 0.015958759044705673, -0.8714154534123457, -0.23823984975775492],
    "b1": [0.3423859736383399, 0.515341221169316, -0.8712704129539506, 0.8306874032809279, 0.02106550508226679, 0.5196660488731331, 0.05766085178212199, -0.49769431995125935, -0.6008977800685642, 0.1641687089910362],
    "W2": [-0.011848197040808047, -0.274597658220148, 0.18037002641326483, -0.20120564368389762, -0.05631562260971574, -0.04681431589578016, 0.2636858397767821, -0.12915083274406697, 0.1185627356569057, 0.2601483333982888],
    "b2": [0.25150414937975585],
}


class ScalarODE(nn.Module):
    def __init__(self, width: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, t, y):
        return self.net(y)

    @classmethod
    def paper(cls) -> ScalarODE:
        """The 1-10-1 field with the authors' weights (PAPER_WEIGHTS)."""
        field = cls().double()
        with torch.no_grad():
            field.net[0].weight.copy_(torch.tensor(PAPER_WEIGHTS["W1"]).reshape(10, 1))
            field.net[0].bias.copy_(torch.tensor(PAPER_WEIGHTS["b1"]))
            field.net[2].weight.copy_(torch.tensor(PAPER_WEIGHTS["W2"]).reshape(1, 10))
            field.net[2].bias.copy_(torch.tensor(PAPER_WEIGHTS["b2"]))
        return field


def checkpoint_label(schedule: str, c: int) -> str:
    return f"checkpoint {schedule}, {c}"


def methods(mode: str = "eager") -> dict[str, object]:
    spec, compiled = SolverSpec("midpoint", step_size=DT), mode == "compiled"
    out: dict[str, object] = {"reversible": Reversible(spec, compile=compiled),
                              "direct_rk": DirectRK(spec, compile=compiled)}
    if not compiled:
        out["direct (torchdiffeq)"] = DirectBackprop(spec)
    for schedule in SCHEDULES:
        for c in CHECKPOINTS:
            out[checkpoint_label(schedule, c)] = RecursiveCheckpoint(spec, checkpoints=c, schedule=schedule,
                                                                     compile=compiled)
    return out


def reference_method(name: str) -> object:
    """The gradient a cell is compared with: backprop through the same steps."""
    spec = SolverSpec("midpoint", step_size=DT)
    return Reversible(spec, backward="autograd") if name == "reversible" else DirectRK(spec)


def gradient(method, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """The flattened gradient of sum(y_T^2) with respect to the field's parameters, then y0."""
    field.zero_grad(set_to_none=True)
    x = y0.clone().requires_grad_(True)
    method.solve(field, x, ts)[-1].pow(2).sum().backward()
    return torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])


def reconstruction_error(field: nn.Module, y0: torch.Tensor, steps: int, coupling: float) -> float:
    """||g_reversible - g_autograd|| / ||g_autograd||, both through the same reversible solve."""
    ts = torch.tensor([0.0, steps * DT], dtype=torch.float64, device=y0.device)
    spec = SolverSpec("midpoint", step_size=DT)
    grads = [gradient(Reversible(spec, coupling=coupling, backward=b), field, y0, ts) for b in ("reconstruct",
                                                                                               "autograd")]
    return relative_error(grads[0], grads[1])


def one_gradient(method, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> None:
    field.zero_grad(set_to_none=True)
    method.solve(field, y0, ts)[-1].pow(2).sum().backward()


@dataclass
class Cell:
    seconds: list[float] = field(default_factory=list)
    nfe: int = 0
    recomputed: float = 0.0  # steps the backward pass recomputed, per step
    graph_kib: float = 0.0
    peak_mib: float | None = None
    grad_error: float | None = None
    compile_seconds: float | None = None
    slow: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def warm_up(method, field, y0, ts, device: torch.device, reference: torch.Tensor | None) -> Cell:
    """One metered gradient (NFE, graph, the gradient's error; compiles a compiled method), then, on CUDA, the peak
    memory of one more."""
    cell = Cell()
    method.nfe.take()
    x = y0.clone().requires_grad_(True)
    field.zero_grad(set_to_none=True)
    start = time.perf_counter()
    with saved_tensor_meter(field) as graph:
        loss = method.solve(field, x, ts)[-1].pow(2).sum()
    loss.backward()
    synchronizer(device)()
    first = time.perf_counter() - start
    counts = method.nfe.take()
    grad = torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])
    cell.nfe = counts.fwd_nfe + counts.bwd_nfe
    cell.recomputed = (counts.bwd_steps - counts.fwd_steps) / counts.fwd_steps if counts.bwd_steps else 0.0
    cell.graph_kib = graph["mib"] * 1024
    cell.grad_error = None if reference is None else relative_error(grad, reference)
    stats = method.describe().get("compile_stats")
    cell.compile_seconds = None if stats is None else stats["compile_seconds"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        one_gradient(method, field, y0, ts)
        torch.cuda.synchronize()
        cell.peak_mib = (torch.cuda.max_memory_allocated(device) - base) / MIB
    cell.slow = cell.compile_seconds is None and first > SLOW_SECONDS
    return cell


# --------------------------------------------------------------------------------------------------------------
# The authors' JAX reversible, in a subprocess


def authors_python() -> tuple[str | None, str]:
    """(the Python that can run the authors' code, None when none can; how it was found or why not)."""
    named = os.environ.get("FASTGRAD_AUTHORS_PYTHON")
    if named:
        return named, f"FASTGRAD_AUTHORS_PYTHON={named}"
    if importlib.util.find_spec("jax") and importlib.util.find_spec("reversible"):
        return sys.executable, "this Python (jax and the authors' `reversible` importable)"
    return None, ("jax or the authors' `reversible` package is not importable here and FASTGRAD_AUTHORS_PYTHON is "
                  "not set (docs/benchmarks.md: installing their code outside the repository)")


class AuthorsJAX:
    """The authors' reversible solver behind a pipe: `gradient(n)` -> (seconds, compile seconds, gradient)."""

    def __init__(self, python: str, field: ScalarODE, y0: float) -> None:
        w1, b1 = field.net[0].weight, field.net[0].bias
        w2, b2 = field.net[2].weight, field.net[2].bias
        setup = {"weights": {"W1": w1.tolist(), "b1": b1.tolist(), "W2": w2.tolist(), "b2": b2.tolist()},
                 "y0": y0, "dt": DT, "coupling": 0.999}
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([python, str(AUTHORS_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.proc.stdin.write(json.dumps(setup) + "\n")
        self.proc.stdin.flush()

    def gradient(self, steps: int) -> dict:
        self.proc.stdin.write(json.dumps({"steps": steps}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the authors' JAX subprocess ended: " + self.proc.stderr.read()[-2000:])
        return json.loads(line)

    def roundoff(self, steps: int) -> float:
        self.proc.stdin.write(json.dumps({"roundoff": steps}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["error"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --------------------------------------------------------------------------------------------------------------
# The cost model


def cost_units(field: nn.Module, y0: torch.Tensor, device: torch.device, mode: str = "eager", blocks: int = 7,
               calls: int = 200) -> dict[str, float]:
    """Seconds per step of the four per-step pieces the methods are made of, timed with the methods' own steppers
    (`SteppingMethod.stepper`; compiled ones in `mode` compiled: B, F and Rb as compiled loops of `calls` steps, GV
    as single compiled steps, as the methods run them), interleaved, median over `blocks`:
    B = one base step without a graph (checkpointing's forward and recomputed steps), GV = one base step with a
    graph and its local VJP (a checkpointing U-turn), F = a reversible forward step (2 base steps), Rb = a
    reversible backward step (2 base steps with graphs, 2 VJPs, the reconstruction and adjoint arithmetic)."""
    spec, compiled = SolverSpec("midpoint", step_size=DT), mode == "compiled"
    plain = RecursiveCheckpoint(spec, compile=compiled).stepper(field)
    rev = Reversible(spec, coupling=0.999, compile=compiled).stepper(field)
    params = trainable(field)
    grads = [torch.zeros_like(p) for p in params]
    y, adj = y0.detach(), torch.ones_like(y0)
    times = [k * DT for k in range(calls + 1)]

    def forward_steps():
        plain.advance(times, 0, calls, y)

    def grad_steps():
        with torch.no_grad():
            for k in range(calls - 1, -1, -1):
                plain.grad_step(times[k], times[k + 1], y, adj, params, grads)
                report_step(plain.field, True)

    def reversible_forward():
        with torch.no_grad():
            rev.steps(times, 0, calls, (y, y))

    def reversible_backward():
        with torch.no_grad():
            if compiled:
                rev.compiled.inverse_steps(times, 0, calls, y, y, adj, adj, params, grads)
                return
            for k in range(calls - 1, -1, -1):
                rev.inverse_step(times[k], times[k + 1], y, y, adj, adj, params, grads)
                report_step(rev.field, True)

    pieces = {"B": forward_steps, "GV": grad_steps, "F": reversible_forward, "Rb": reversible_backward}
    for fn in pieces.values():  # compiles the compiled pieces
        fn()
    samples: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(blocks):
        for name, fn in pieces.items():
            samples[name].append(timed(fn, device) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def break_even(units: dict[str, float]) -> float:
    """r*: the recomputed steps per step above which a reversible gradient is cheaper than checkpointing."""
    return (units["F"] + units["Rb"] - units["B"] - units["GV"]) / units["B"]


def model_seconds(units: dict[str, float], name: str, steps: int, recomputed: float) -> float | None:
    """The cost model's seconds for one gradient (None for direct backprop, whose backward is one autograd pass)."""
    if name == "reversible":
        return steps * (units["F"] + units["Rb"])
    if name.startswith("checkpoint "):
        return steps * (units["B"] + units["GV"]) + recomputed * steps * units["B"]
    return None


def cost_model_line(mode: str, units: dict[str, float]) -> str:
    us = {name: 1e6 * value for name, value in units.items()}
    b = us["B"]
    return (
        f"- Cost model, {mode} (per-step pieces timed in this run with the methods' own step functions, µs): "
        f"B = {b:.2f}; GV = {us['GV']:.2f} = {us['GV'] / b:.2f} B; F = {us['F']:.2f} = {us['F'] / b:.2f} B; "
        f"Rb = {us['Rb']:.2f} = {us['Rb'] / b:.2f} B; r* = (F + Rb - B - GV) / B = {break_even(units):.2f} "
        f"(≈ 1 + GV / B = {1 + us['GV'] / b:.2f} when F ≈ 2 B and Rb ≈ 2 GV)."
    )


def wide_field_line(units: dict[str, float]) -> str:
    """The same model for a wide field, where arithmetic rather than per-operation overhead sets the units."""
    width, batch = WIDE
    us = {name: 1e6 * value for name, value in units.items()}
    return (
        f"- The same pieces (eager) for a field of the same shape large enough that arithmetic decides (1-{width}-1 "
        f"tanh, batch {batch}; pieces timed only): B = {us['B']:.0f} µs, GV = {us['GV'] / us['B']:.2f} B, "
        f"F = {us['F'] / us['B']:.2f} B, Rb = {us['Rb'] / us['B']:.2f} B, r* = {break_even(units):.2f}. Since "
        "r* ≈ 1 + GV / B and GV contains a base step's own arithmetic, r* > 2 for any implementation, so a schedule "
        "that recomputes fewer than about two steps per step stays faster than reversible."
    )


# --------------------------------------------------------------------------------------------------------------
# The section


def _spread(cell: Cell) -> str:
    if len(cell.seconds) == 1:
        return f"{cell.seconds[0]:.4g} (1 sample)"
    return f"{cell.median:.4g} ({min(cell.seconds):.3g}–{max(cell.seconds):.3g})"


def run_section(device: torch.device, repeats: int, steps_grid: tuple[int, ...] = STEPS,
                modes: tuple[str, ...] = MODES, authors: bool = True) -> str:
    """The tables for step counts `steps_grid` (default 100, 1000, 3000) and `modes` (eager, compiled)."""
    field = ScalarODE.paper().to(device)
    y0 = torch.ones(1, 1, dtype=torch.float64, device=device)
    python, found = authors_python() if authors else (None, "not asked for")
    jax = AuthorsJAX(python, field, 1.0) if python and device.type == "cpu" else None
    table: dict[tuple[int, str, str], Cell] = {}
    jax_cells: dict[int, dict] = {}
    built = {mode: methods(mode) for mode in modes}
    for steps in steps_grid:
        ts = torch.tensor([0.0, steps * DT], dtype=torch.float64, device=device)
        refs = {name: gradient(reference_method(name), field, y0, ts) for name in ("reversible", "direct_rk")}
        for mode in modes:
            for name, method in built[mode].items():
                ref = refs["reversible" if name == "reversible" else "direct_rk"]
                table[(steps, mode, name)] = warm_up(method, field, y0, ts, device, ref)
        ours = gradient(built[modes[0]]["reversible"], field, y0, ts)
        if jax is not None:
            first = jax.gradient(steps)
            grad = torch.tensor(first["grad"], dtype=torch.float64)
            jax_cells[steps] = {"seconds": [], "compile": first["compile_seconds"], "error": relative_error(grad, ours.cpu())}
        for _ in range(max(repeats, 5)):  # interleaved: load hits all alike
            for mode in modes:
                for name, method in built[mode].items():
                    cell = table[(steps, mode, name)]
                    if cell.slow and cell.seconds:
                        continue
                    cell.seconds.append(timed(lambda m=method, t=ts: one_gradient(m, field, y0, t), device))
            if jax is not None:
                jax_cells[steps]["seconds"].append(jax.gradient(steps)["seconds"])
    long = (*steps_grid, LONG_HORIZON) if max(steps_grid) < LONG_HORIZON else steps_grid
    roundoff = {(lam, steps): reconstruction_error(field, y0, steps, lam) for lam in COUPLINGS
                for steps in (long if lam == COUPLINGS[0] else steps_grid)}
    if jax is not None:
        roundoff.update({("jax", steps): jax.roundoff(steps) for steps in long})
        jax.close()
    units = {mode: cost_units(field, y0, device, mode) for mode in modes}
    torch.manual_seed(0)
    wide = ScalarODE(WIDE[0]).to(device, torch.float64)
    wide_units = cost_units(wide, torch.ones(WIDE[1], 1, dtype=torch.float64, device=device), device, blocks=7,
                            calls=20)
    return render(device, repeats, steps_grid, modes, table, units, wide_units, roundoff, jax_cells, found)


def render(device, repeats, steps_grid, modes, table, units, wide_units, roundoff, jax_cells, found) -> str:
    cuda = device.type == "cuda"
    first = steps_grid[0]
    lines = [
        f"## Reversible vs checkpointing (offline and online schedules) vs direct: one gradient against the number of "
        f"steps ({device}, {torch.get_num_threads()} thread(s); scalar neural ODE 1-10-1 tanh, float64, midpoint, dt "
        f"{DT}; median (min–max) of {max(repeats, 5)} interleaved gradients, 1 where the first took over "
        f"{SLOW_SECONDS:g} s)",
        "",
        "| steps | method | mode | s / gradient | × reversible (same mode) | NFE | recomputed / step | graph KiB | "
        "graph / at first steps | cost model s | gradient vs backprop |" + (" peak CUDA MiB |" if cuda else ""),
        "|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" if cuda else ""),
    ]
    for steps in steps_grid:
        for mode in modes:
            rev = table[(steps, mode, "reversible")].median
            for (s, m, name), cell in table.items():
                if (s, m) != (steps, mode):
                    continue
                model = model_seconds(units[mode], name, steps, cell.recomputed)
                growth = cell.graph_kib / max(table[(first, mode, name)].graph_kib, 1e-12)
                row = (f"| {steps} | {name} | {mode} | {_spread(cell)} | {cell.median / rev:.2f} | {cell.nfe} | "
                       f"{cell.recomputed:.2f} | {cell.graph_kib:.2f} | {growth:.2f} | "
                       f"{'–' if model is None else f'{model:.4g}'} | {cell.grad_error:.1e} |")
                if cuda:
                    row += f" {cell.peak_mib:.3f} |"
                lines.append(row)
        if steps in jax_cells:
            j = jax_cells[steps]
            med = statistics.median(j["seconds"])
            lines.append(f"| {steps} | {AUTHORS} | jit | {med:.4g} ({min(j['seconds']):.3g}–{max(j['seconds']):.3g}) "
                         f"| – | – | – | – | – | – | "
                         f"{j['error']:.1e} (vs ours) |" + (" – |" if cuda else ""))
    lines += ["", "### Verdict per cell: reversible faster than checkpointing? (the model: R / n > r*; measured: the "
              "time ratio checkpointing / reversible)", ""]
    for mode in modes:
        r_star = break_even(units[mode])
        lines += [f"{mode} (r* = {r_star:.2f}):", "",
                  "| schedule, checkpoints | " + " | ".join(f"{s} steps" for s in steps_grid) + " |",
                  "|:--|" + "--:|" * len(steps_grid)]
        for schedule in SCHEDULES:
            for c in CHECKPOINTS:
                name = checkpoint_label(schedule, c)
                cells = []
                for steps in steps_grid:
                    cell, rev = table[(steps, mode, name)], table[(steps, mode, "reversible")]
                    model = "reversible" if cell.recomputed > r_star else "checkpointing"
                    ratio = cell.median / rev.median
                    measured = "reversible" if ratio > 1 else "checkpointing"
                    mark = "" if model == measured else " **model and measurement differ**"
                    cells.append(f"R/n {cell.recomputed:.2f} vs r* {r_star:.2f}: model {model}; measured ×{ratio:.2f} "
                                 f"({measured}){mark}")
                lines.append(f"| {schedule}, {c} | " + " | ".join(cells) + " |")
        lines += ["", cost_model_line(mode, units[mode]), ""]
    compiles = sorted({(name, cell.compile_seconds) for (s, m, name), cell in table.items()
                       if m == "compiled" and s == first and cell.compile_seconds is not None})
    if compiles:
        lines.append("- Compile time (first gradient of each compiled method, not in its step times): "
                     + "; ".join(f"{name} {sec:.1f} s" for name, sec in compiles) + ".")
    if jax_cells:
        parts = []
        for steps, j in jax_cells.items():
            med = statistics.median(j["seconds"])
            ratios = ", ".join(f"{mode} ×{table[(steps, mode, 'reversible')].median / med:.1f}" for mode in modes)
            parts.append(f"{steps} steps: JAX {1e3 * med:.3g} ms (jit {j['compile']:.2f} s apart), ours {ratios}")
        lines.append(f"- Ours against the authors' JAX reversible (same weights, same process tree, run by {found}): "
                     + "; ".join(parts) + ".")
    else:
        lines.append(f"- The authors' JAX reversible was not run: {found}.")
    lines += [
        wide_field_line(wide_units),
        "- Round-off of the reconstruction (it divides by lambda each step) on the paper's field: relative "
        "difference between the reversible gradient and backprop through the same reversible solve, "
        + "; ".join(f"{'the authors JAX, lambda 0.999' if lam == 'jax' else f'ours, lambda {lam}'}: "
                    + ", ".join(f"{roundoff[(lam, s)]:.1e} at {s}" for s in sorted(s for k, s in roundoff if k == lam))
                    for lam in dict.fromkeys(k for k, _ in roundoff))
        + " steps.",
        "- recomputed / step: the steps the backward pass advanced without a graph, per step (NFE counter: backward "
        "steps less n). graph KiB: tensors saved for backward (reversible: the final pair; checkpointing: its "
        "checkpoints; direct: every stage of every step).",
        "",
    ]
    return "\n".join(lines)


def run(args) -> str:
    return run_section(args.device, args.repeats, tuple(getattr(args, "steps", None) or STEPS))
