"""Step grids: where a solve's steps fall, where its outputs sit among them, and how output gradients enter back.

Fixed steps cut each interval between output times into equal steps no longer than `step_size` (so every output time
is a grid point and outputs need no interpolation). Adaptive steps (solvers.core.controller) either land on every
output time too, or, with `solver.options.outputs: interpolate`, step freely to the last time and give the outputs
in between by linear interpolation of the accepted steps (`OutputCollector`); their gradients then enter the adjoint
at both neighbouring steps (`OutputGradients`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Grid:
    """The times of a solve's steps (host floats) and where each output time sits in them: output i is
    (1 - s) y_n + s y_{n+1} with n = outputs[i], s = fractions[i] (s = 0 when ts[i] is a step time)."""

    times: list[float]
    outputs: list[int]
    fractions: list[float] | None = None

    @property
    def steps(self) -> int:
        return len(self.times) - 1

    def output_weights(self) -> dict[int, list[tuple[int, float]]]:
        """grid index k -> [(position in ts, d output / d y_k)]: how output gradients enter the adjoint at y_k."""
        weights: dict[int, list[tuple[int, float]]] = {}
        for position, n in enumerate(self.outputs):
            s = self.fractions[position] if self.fractions else 0.0
            weights.setdefault(n, []).append((position, 1.0 - s))
            if s:
                weights.setdefault(n + 1, []).append((position, s))
        return weights


def output_gradient(weights: dict[int, list[tuple[int, float]]], k: int, grad_ys: torch.Tensor):
    """The sum of the output gradients that reach grid state k (None when none do)."""
    total = None
    for position, w in weights.get(k, ()):
        g = grad_ys[position] if w == 1 else grad_ys[position] * w
        total = g if total is None else total + g
    return total


class OutputGradients:
    """The loss's gradients with respect to a solve's outputs (`grad_ys`, one per time of ts), as a backward pass
    that walks the grid meets them: `add_to(adjoint, k)` adds those that reach grid state k."""

    def __init__(self, grid: Grid, grad_ys: torch.Tensor) -> None:
        self.weights = grid.output_weights()
        self.grad_ys = grad_ys

    def add_to(self, adjoint: torch.Tensor, k: int) -> torch.Tensor:
        """adjoint + the output gradients that reach grid state k (adjoint itself when none do)."""
        g = output_gradient(self.weights, k, self.grad_ys)
        return adjoint if g is None else adjoint + g


class OutputCollector:
    """Gathers the outputs at `times` from the accepted states, interpolating linearly between steps."""

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.direction = 1.0 if times[-1] > times[0] else -1.0
        self.pending = 0
        self.values: list[torch.Tensor] = []
        self.outputs: list[int] = []
        self.fractions: list[float] = []
        self.previous: tuple[float, torch.Tensor] | None = None

    def accept(self, index: int, t: float, y: torch.Tensor) -> None:
        while self.pending < len(self.times) and self.direction * (self.times[self.pending] - t) <= 0:
            tau = self.times[self.pending]
            if tau == t:
                self.values.append(y)
                self.outputs.append(index)
                self.fractions.append(0.0)
            else:
                t_prev, y_prev = self.previous
                frac = (tau - t_prev) / (t - t_prev)
                self.values.append(torch.lerp(y_prev, y, frac))
                self.outputs.append(index - 1)
                self.fractions.append(frac)
            self.pending += 1
        self.previous = (t, y)

    def grid(self, times: list[float]) -> Grid:
        return Grid(times, self.outputs, self.fractions)


def check_times(ts: torch.Tensor) -> list[float]:
    """ts as host floats; must be strictly monotone (either direction) with at least two entries."""
    if ts.ndim != 1 or len(ts) < 2:
        raise ValueError("ts must be a 1-D tensor of at least two times")
    times = [float(t) for t in ts.detach().cpu().tolist()]
    diffs = [b - a for a, b in zip(times[:-1], times[1:])]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise ValueError("ts must be strictly increasing or strictly decreasing")
    return times


def fixed_grid(times: list[float], step_size: float | None) -> Grid:
    """Equal steps no longer than `step_size` between consecutive output times (one step each when None)."""
    grid, outputs = [times[0]], [0]
    for a, b in zip(times[:-1], times[1:]):
        n = 1 if step_size is None else step_count(b - a, step_size)
        h = (b - a) / n
        grid.extend(a + k * h for k in range(1, n))
        grid.append(b)
        outputs.append(len(grid) - 1)
    return Grid(grid, outputs)


def step_count(span: float, step_size: float) -> int:
    """Steps of at most `step_size` that cover `span`: ceil(span / step_size), except that a quotient within 1e-9
    above an integer n is n steps (10 x 0.1 covers 1.0, although the floating-point quotient may be 10 + 4e-16)."""
    return max(1, math.ceil(abs(span) / step_size - 1e-9))


class UniformGrid:
    """torchdiffeq's fixed-step grid (t0, t0 + h, t0 + 2h, ..., then t1), with its step count from `step_count`:
    torchdiffeq's own count, ceil((t1 - t0) / h + 1) points, gives a 51-point grid for 49 steps of 1/49 over [0, 1]
    (the quotient is 49.000000000000007), whose last step is 1e-16 long. A `grid_constructor` for torchdiffeq's
    fixed-grid solvers (forward and, time-reversed, the adjoint's backward solve)."""

    def __init__(self, step_size: float) -> None:
        self.step_size = step_size

    def __call__(self, func, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        start, end = t[0], t[-1]
        n = step_count(float(end - start), self.step_size)
        step = self.step_size if end >= start else -self.step_size  # torchdiffeq hands a reversed solve t backwards
        grid = torch.arange(0, n + 1, dtype=t.dtype, device=t.device) * step + start
        grid[-1] = end
        return grid
