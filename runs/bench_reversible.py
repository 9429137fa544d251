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
Also reported: how far the reconstructing backward pass drifts from backprop through the same reversible solve as the
steps grow (its round-off is amplified by 1/lambda per step), for lambda = 0.999 and 0.9.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from runs.bench import timed
from runs.memory import MIB, saved_tensor_meter
from solvers.base import SolverSpec
from solvers.checkpoint import RecursiveCheckpoint, recomputations
from solvers.direct import DirectBackprop
from solvers.direct_rk import DirectRK
from solvers.reversible import Reversible

STEPS = (100, 1000, 10000)
DT = 0.01
CHECKPOINTS = (2, 4, 8)
COUPLINGS = (0.999, 0.9)  # the default, and a smaller lambda whose reconstruction loses accuracy sooner


class ScalarODE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 10), nn.Tanh(), nn.Linear(10, 1))

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
    return {"seconds": seconds, "graph_kib": graph["mib"] * 1024, "peak_mib": peak, "nfe": counts.fwd + counts.bwd}


def run_section(device: torch.device, repeats: int) -> str:
    torch.manual_seed(0)
    field = ScalarODE().to(device, torch.float64)
    y0 = torch.ones(1, 1, dtype=torch.float64, device=device)
    table: dict[tuple[int, str], dict] = {}
    names = list(methods())
    for steps in STEPS:
        ts = torch.tensor([0.0, steps * DT], dtype=torch.float64, device=device)
        cells = methods()
        times: dict[str, list[float]] = {name: [] for name in names}
        for name, method in cells.items():
            table[(steps, name)] = measure(method, field, y0, ts, 1, device)
            times[name].append(table[(steps, name)]["seconds"])
        for _ in range(max(repeats, 5) - 1 if steps < 10000 else 0):  # interleaved repeats: load hits all alike
            for name, method in cells.items():
                times[name].append(timed(lambda m=method, t=ts: one_gradient(m, field, y0, t), device))
        for name in names:
            table[(steps, name)]["seconds"] = statistics.median(times[name])
    roundoff = {(lam, steps): reconstruction_error(field, y0, steps, lam, device)
                for lam in COUPLINGS for steps in STEPS}
    cuda = device.type == "cuda"
    lines = [
        f"## Reversible vs direct vs checkpointing: one gradient against the number of steps ({device}, "
        f"{torch.get_num_threads()} thread(s); scalar neural ODE 1-10-1 tanh, float64, midpoint, dt {DT}; median "
        f"of {max(repeats, 5)} interleaved gradients, 1 at 10000 steps)",
        "",
        "| steps | method | s / gradient | × reversible | NFE (fwd + bwd) | graph KiB | graph / same method at 100 "
        "steps |" + (" peak CUDA MiB |" if cuda else ""),
        "|--:|:--|--:|--:|--:|--:|--:|" + ("--:|" if cuda else ""),
    ]
    for steps in STEPS:
        rev = table[(steps, "reversible")]["seconds"]
        for name in names:
            cell = table[(steps, name)]
            growth = cell["graph_kib"] / table[(STEPS[0], name)]["graph_kib"]
            row = (f"| {steps} | {name} | {cell['seconds']:.4f} | {cell['seconds'] / rev:.2f} | {cell['nfe']} | "
                   f"{cell['graph_kib']:.2f} | {growth:.2f} |")
            if cuda:
                row += f" {cell['peak_mib']:.3f} |"
            lines.append(row)
    verdicts = []
    for c in CHECKPOINTS:
        name = f"checkpoint, {c} checkpoints"
        wins = [s for s in STEPS if table[(s, "reversible")]["seconds"] < table[(s, name)]["seconds"]]
        verdicts.append(f"{c} checkpoints: at {', '.join(map(str, wins)) or 'no'} step count(s) of {len(STEPS)}")
    ratios = ", ".join(f"{s} steps {table[(s, 'reversible')]['seconds'] / table[(s, 'direct_rk')]['seconds']:.2f}"
                       for s in STEPS)
    rev_growth = table[(STEPS[-1], "reversible")]["graph_kib"] / table[(STEPS[0], "reversible")]["graph_kib"]
    direct_growth = table[(STEPS[-1], "direct_rk")]["graph_kib"] / table[(STEPS[0], "direct_rk")]["graph_kib"]
    lines += [
        "",
        f"- reversible faster than checkpointing with {'; '.join(verdicts)}.",
        f"- reversible / direct backprop (same loop) time ratio: {ratios}.",
        f"- graph memory from {STEPS[0]} to {STEPS[-1]} steps: reversible ×{rev_growth:.2f}, "
        f"direct ×{direct_growth:.1f}.",
        "- Cost model: a reversible gradient evaluates 2 base steps per step forward and 2 backward and takes 2 "
        "vector-Jacobian products per step; checkpointing evaluates 1 base step forward, its recomputations and 1 "
        "more with a graph, and takes 1 VJP per step. Recomputed base steps per step of the binomial schedule: "
        + "; ".join(f"{c} checkpoints " + ", ".join(f"{recomputations(s, c - 1) / s:.1f}" for s in STEPS)
                    for c in CHECKPOINTS) + f" (at {', '.join(map(str, STEPS))} steps).",
        "- Round-off of the reconstruction (it divides by lambda each step): relative difference between the "
        "reversible gradient and backprop through the same reversible solve, "
        + "; ".join(f"lambda {lam}: " + ", ".join(f"{roundoff[(lam, s)]:.1e}" for s in STEPS) for lam in COUPLINGS)
        + f" (at {', '.join(map(str, STEPS))} steps).",
        "- graph KiB counts the tensors saved for backward (reversible: the final pair; checkpointing: its "
        "checkpoints; direct: every stage of every step); the backward passes of reversible and checkpointing also "
        "hold one step's graph at a time, transiently.",
        "",
    ]
    return "\n".join(lines)


def run(args) -> str:
    return run_section(args.device, args.repeats)
