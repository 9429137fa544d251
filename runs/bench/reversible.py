"""Cost of one gradient against the number of steps: reversible vs direct backprop vs recursive checkpointing.

The runtime-complexity problem of the reversible-solvers paper (v2, experiments/complexity): a scalar neural ODE
(Linear 1->10, tanh, 10->1), float64, midpoint base scheme, dt = 0.01, loss sum(y_T^2), one gradient = forward +
backward. Steps 100 -> 1000 -> 10000 (T = 1, 10, 100). Methods, all on the same discrete midpoint steps:
reversible (lambda = 0.999), direct backprop through our RK loop (`direct_rk`) and through torchdiffeq (`direct`),
and binomial checkpointing with 2, 4 and 8 checkpoints (the counts the paper's figure compares). Each time is the
median of max(`--repeats`, 5) gradients, interleaved across methods, after one warm-up (a single timed gradient at
10000 steps, where checkpointing with 2 checkpoints recomputes about a million steps). NFE = field evaluations of
one gradient, forward + backward. Memory: graph KiB (tensors autograd saves between forward and
backward, parameters excluded, measured once per cell) and, on CUDA, the peak allocated during one gradient.
Cost model: the per-step pieces (a base step B, checkpointing's backward step GV = graph + local VJP, the
reversible forward and backward steps F and Rb) are timed with the methods' own step functions in the same run, and
a `cost model s` column rebuilds each memory-bounded method's time from them (reversible n (F + Rb), checkpointing
n (B + GV) + R B), with the recomputation count r* per step above which reversible must win.
Also reported: how far the reconstructing backward pass drifts from backprop through the same reversible solve as the
steps grow (its round-off is amplified by 1/lambda per step), for lambda = 0.999 and 0.9.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from runs.bench.common import timed
from runs.memory import MIB, saved_tensor_meter
from solvers.base import SolverSpec, trainable
from solvers.checkpoint import RecursiveCheckpoint, backward_recomputations
from solvers.direct import DirectBackprop
from solvers.direct_rk import DirectRK
from solvers.nfe import report_step
from solvers.reversible import Reversible

STEPS = (100, 1000, 10000)
DT = 0.01
CHECKPOINTS = (2, 4, 8)
SINGLE_GRADIENT_FROM = 10000  # from this many steps on, one gradient is timed (2 checkpoints take minutes there)
COUPLINGS = (0.999, 0.9)  # the default, and a smaller lambda whose reconstruction loses accuracy sooner
WIDE = (256, 1024)  # (width, batch) of a field of the same shape large enough that arithmetic, not overhead, decides


class ScalarODE(nn.Module):
    def __init__(self, width: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, t, y):
        return self.net(y)


def methods() -> dict[str, object]:
    spec = SolverSpec("midpoint", step_size=DT)
    out = {"reversible": Reversible(spec), "direct_rk": DirectRK(spec), "direct (torchdiffeq)": DirectBackprop(spec)}
    for c in CHECKPOINTS:
        out[f"checkpoint, {c} checkpoints"] = RecursiveCheckpoint(spec, checkpoints=c)
    return out


def reconstruction_error(field: nn.Module, y0: torch.Tensor, steps: int, coupling: float,
                         device: torch.device) -> float:
    """||g_reversible - g_autograd|| / ||g_autograd||, both through the same reversible solve."""
    ts = torch.tensor([0.0, steps * DT], dtype=torch.float64, device=device)
    spec = SolverSpec("midpoint", step_size=DT)
    grads = []
    for backward in ("reconstruct", "autograd"):
        field.zero_grad(set_to_none=True)
        x = y0.clone().requires_grad_(True)
        Reversible(spec, coupling=coupling, backward=backward).solve(field, x, ts)[-1].pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()]))
    return (torch.linalg.vector_norm(grads[0] - grads[1]) / torch.linalg.vector_norm(grads[1])).item()


def one_gradient(method, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor) -> None:
    field.zero_grad(set_to_none=True)
    method.solve(field, y0, ts)[-1].pow(2).sum().backward()


def measure(method, field, y0, ts, repeats: int, device: torch.device) -> dict[str, float | None]:
    method.nfe.take()
    with saved_tensor_meter(field) as graph:  # also the warm-up
        loss = method.solve(field, y0, ts)[-1].pow(2).sum()
    loss.backward()
    counts = method.nfe.take()
    peak = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        one_gradient(method, field, y0, ts)
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated(device) - base) / MIB
    seconds = statistics.median(timed(lambda: one_gradient(method, field, y0, ts), device) for _ in range(repeats))
    return {"seconds": seconds, "graph_kib": graph["mib"] * 1024, "peak_mib": peak,
            "nfe": counts.fwd_nfe + counts.bwd_nfe}


def cost_units(field: nn.Module, y0: torch.Tensor, device: torch.device, blocks: int = 7,
               calls: int = 200) -> dict[str, float]:
    """Seconds per call of the four per-step pieces the methods are made of, timed on the bench's field (counted by
    the method's NFE counter, as in a solve, each step reported to it) with the methods' own steppers
    (`SteppingMethod.stepper`), interleaved, median over `blocks`:
    B = one base step without a graph (a forward or recomputed step of checkpointing and direct backprop's forward
    arithmetic), GV = one base step with a graph and its local VJP (checkpointing's backward step), F = a reversible
    forward step (2 base steps), Rb = a reversible backward step (2 base steps with graphs, 2 VJPs, the
    reconstruction and adjoint arithmetic)."""
    spec = SolverSpec("midpoint", step_size=DT)
    plain = RecursiveCheckpoint(spec).stepper(field)  # its base steps and backward steps
    rev = Reversible(spec, coupling=0.999).stepper(field)
    params = trainable(field)
    grads = [torch.zeros_like(p) for p in params]
    y, adj = y0.detach(), torch.ones_like(y0)
    times = [k * DT for k in range(calls + 1)]

    def forward_steps():  # what checkpointing's recomputation runs
        with torch.no_grad():
            plain.advance(times, 0, calls, y)

    def grad_steps():
        with torch.no_grad():
            for k in range(calls - 1, -1, -1):
                plain.grad_step(times[k], times[k + 1], y, adj, params, grads)
                report_step(plain.field, True)

    def reversible_forward():
        with torch.no_grad():
            for k in range(calls):
                rev.step(times[k], times[k + 1], (y, y))
                report_step(rev.field, True)

    def reversible_backward():
        with torch.no_grad():
            for k in range(calls - 1, -1, -1):
                rev.inverse_step(times[k], times[k + 1], y, y, adj, adj, params, grads)
                report_step(rev.field, True)

    pieces = {"B": forward_steps, "GV": grad_steps, "F": reversible_forward, "Rb": reversible_backward}
    samples: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(blocks):
        for name, fn in pieces.items():
            samples[name].append(timed(fn, device) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def model_seconds(units: dict[str, float], name: str, steps: int) -> float | None:
    """The cost model's seconds for one gradient (None for direct backprop, whose backward is one autograd pass)."""
    if name == "reversible":
        return steps * (units["F"] + units["Rb"])
    if name.startswith("checkpoint, "):
        c = int(name.split()[1])
        return steps * (units["B"] + units["GV"]) + backward_recomputations(steps, c - 1) * units["B"]
    return None


def break_even(units: dict[str, float]) -> float:
    """r*: the recomputed steps per step above which a reversible gradient is cheaper than checkpointing."""
    return (units["F"] + units["Rb"] - units["B"] - units["GV"]) / units["B"]


def predicted_wins(threshold: float, steps: tuple[int, ...]) -> str:
    return "; ".join(f"{c} at " + (", ".join(str(n) for n in steps if backward_recomputations(n, c - 1) / n > threshold)
                                   or "no") for c in CHECKPOINTS)


def cost_model_line(units: dict[str, float], steps: tuple[int, ...]) -> str:
    """The cost model in words and numbers: when reversible must beat checkpointing, and whether it does."""
    us = {name: 1e6 * value for name, value in units.items()}
    b = us["B"]
    threshold = break_even(units)
    return (
        "- Cost model, from per-step pieces timed in this run with the methods' own step functions (µs): B = a base "
        f"step without a graph {b:.1f}; GV = a base step with a graph plus its local VJP (checkpointing's backward "
        f"step) {us['GV']:.1f} = {us['GV'] / b:.2f} B; F = a reversible forward step (2 base steps) {us['F']:.1f} = "
        f"{us['F'] / b:.2f} B; Rb = a reversible backward step (2 base steps with graphs, 2 VJPs, reconstruction "
        f"and adjoint arithmetic) {us['Rb']:.1f} = {us['Rb'] / b:.2f} B, of which {us['Rb'] - 2 * us['GV']:.1f} "
        "beyond 2 GV. One gradient of n steps costs n (F + Rb) reversible and n (B + GV) + R(n, c) B checkpointing "
        "with c checkpoints (R = the steps its backward pass recomputes: the binomial schedule's recomputations less "
        "its first descent, which the forward pass stores), so reversible is the faster exactly when "
        f"R(n, c) / n > r* = (F + Rb - B - GV) / B = {threshold:.2f}. R(n, c) / n: "
        + "; ".join(f"{c} checkpoints " + ", ".join(f"{backward_recomputations(n, c - 1) / n:.2f}" for n in steps)
                    for c in CHECKPOINTS)
        + f" (at {', '.join(map(str, steps))} steps): the model has reversible faster than checkpointing with "
        + predicted_wins(threshold, steps)
        + " steps. Since F ≈ 2 B and Rb ≈ 2 GV, r* ≈ 1 + GV / B: reversible pays one more "
        "base step forward and one more graph-and-VJP step backward than checkpointing does, which pays instead "
        "its recomputations."
    )


def wide_field_line(units: dict[str, float], steps: tuple[int, ...]) -> str:
    """The same model for a wide field, where arithmetic rather than per-operation overhead sets the units."""
    width, batch = WIDE
    us = {name: 1e6 * value for name, value in units.items()}
    threshold = break_even(units)
    return (
        f"- The same pieces for a field of the same shape large enough that arithmetic decides (1-{width}-1 tanh, "
        f"batch {batch}; pieces timed only, no full gradients): B = {us['B']:.0f} µs, GV = {us['GV'] / us['B']:.2f} B, "
        f"F = {us['F'] / us['B']:.2f} B, Rb = {us['Rb'] / us['B']:.2f} B, r* = {threshold:.2f}; by the model, "
        f"reversible would be faster than checkpointing with {predicted_wins(threshold, steps)} steps. Since "
        "r* ≈ 1 + GV / B and GV "
        "contains a base step's own arithmetic, r* > 2 for any implementation (near 3 when a VJP costs about a "
        "forward step), so schedules that recompute fewer steps per step (many checkpoints, few steps) stay faster."
    )


def run_section(device: torch.device, repeats: int, steps_grid: tuple[int, ...] = STEPS) -> str:
    """The table for step counts `steps_grid` (default 100, 1000, 10000; a shorter grid for a short GPU session)."""
    torch.manual_seed(0)
    field = ScalarODE().to(device, torch.float64)
    y0 = torch.ones(1, 1, dtype=torch.float64, device=device)
    table: dict[tuple[int, str], dict] = {}
    names = list(methods())
    for steps in steps_grid:
        ts = torch.tensor([0.0, steps * DT], dtype=torch.float64, device=device)
        cells = methods()
        times: dict[str, list[float]] = {name: [] for name in names}
        for name, method in cells.items():
            table[(steps, name)] = measure(method, field, y0, ts, 1, device)
            times[name].append(table[(steps, name)]["seconds"])
        # interleaved repeats: load hits all alike
        for _ in range(max(repeats, 5) - 1 if steps < SINGLE_GRADIENT_FROM else 0):
            for name, method in cells.items():
                times[name].append(timed(lambda m=method, t=ts: one_gradient(m, field, y0, t), device))
        for name in names:
            table[(steps, name)]["seconds"] = statistics.median(times[name])
    units = cost_units(field, y0, device)
    torch.manual_seed(0)
    wide = ScalarODE(WIDE[0]).to(device, torch.float64)
    wide_units = cost_units(wide, torch.ones(WIDE[1], 1, dtype=torch.float64, device=device), device, blocks=7,
                            calls=20)
    roundoff = {(lam, steps): reconstruction_error(field, y0, steps, lam, device)
                for lam in COUPLINGS for steps in steps_grid}
    cuda = device.type == "cuda"
    lines = [
        f"## Reversible vs direct vs checkpointing: one gradient against the number of steps ({device}, "
        f"{torch.get_num_threads()} thread(s); scalar neural ODE 1-10-1 tanh, float64, midpoint, dt {DT}; median "
        f"of {max(repeats, 5)} interleaved gradients"
        + (f", 1 from {SINGLE_GRADIENT_FROM} steps)" if max(steps_grid) >= SINGLE_GRADIENT_FROM else ")"),
        "",
        "| steps | method | s / gradient | × reversible | NFE (fwd + bwd) | graph KiB | graph / same method at 100 "
        "steps | cost model s |" + (" peak CUDA MiB |" if cuda else ""),
        "|--:|:--|--:|--:|--:|--:|--:|--:|" + ("--:|" if cuda else ""),
    ]
    for steps in steps_grid:
        rev = table[(steps, "reversible")]["seconds"]
        for name in names:
            cell = table[(steps, name)]
            growth = cell["graph_kib"] / table[(steps_grid[0], name)]["graph_kib"]
            model = model_seconds(units, name, steps)
            row = (f"| {steps} | {name} | {cell['seconds']:.4f} | {cell['seconds'] / rev:.2f} | {cell['nfe']} | "
                   f"{cell['graph_kib']:.2f} | {growth:.2f} | {'–' if model is None else f'{model:.4f}'} |")
            if cuda:
                row += f" {cell['peak_mib']:.3f} |"
            lines.append(row)
    verdicts = []
    for c in CHECKPOINTS:
        name = f"checkpoint, {c} checkpoints"
        wins = [s for s in steps_grid if table[(s, "reversible")]["seconds"] < table[(s, name)]["seconds"]]
        verdicts.append(f"{c} checkpoints: at {', '.join(map(str, wins)) or 'no'} step count(s) of {len(steps_grid)}")
    ratios = ", ".join(f"{s} steps {table[(s, 'reversible')]['seconds'] / table[(s, 'direct_rk')]['seconds']:.2f}"
                       for s in steps_grid)
    rev_growth = table[(steps_grid[-1], "reversible")]["graph_kib"] / table[(steps_grid[0], "reversible")]["graph_kib"]
    direct_growth = table[(steps_grid[-1], "direct_rk")]["graph_kib"] / table[(steps_grid[0], "direct_rk")]["graph_kib"]
    lines += [
        "",
        f"- reversible faster than checkpointing with {'; '.join(verdicts)}.",
        f"- reversible / direct backprop (same loop) time ratio: {ratios}.",
        f"- graph memory from {steps_grid[0]} to {steps_grid[-1]} steps: reversible ×{rev_growth:.2f}, "
        f"direct ×{direct_growth:.1f}.",
        cost_model_line(units, steps_grid),
        wide_field_line(wide_units, steps_grid),
        "- Round-off of the reconstruction (it divides by lambda each step): relative difference between the "
        "reversible gradient and backprop through the same reversible solve, "
        + "; ".join(f"lambda {lam}: " + ", ".join(f"{roundoff[(lam, s)]:.1e}" for s in steps_grid) for lam in COUPLINGS)
        + f" (at {', '.join(map(str, steps_grid))} steps).",
        "- graph KiB counts the tensors saved for backward (reversible: the final pair; checkpointing: its "
        "checkpoints; direct: every stage of every step); the backward passes of reversible and checkpointing also "
        "hold one step's graph at a time, transiently.",
        "",
    ]
    return "\n".join(lines)


def run(args) -> str:
    return run_section(args.device, args.repeats, tuple(getattr(args, "steps", None) or STEPS))
