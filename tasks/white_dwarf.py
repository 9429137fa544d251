"""The white-dwarf equation fitted by a time-dependent neural ODE (the reversible-solvers paper, v2).

Settings from repo sammccallum/reversible-solvers, experiments/white_dwarf/white_dwarf.py and reversible/_training.py:
y1' = y2, y2' = -(y1^2 - C)^(3/2) - 2 y2 / (t + 0.5), C = 0.001, y(0) = (1, 0), T = 5, dt = 0.005 (1000 steps);
the model f(t, y) = MLP([t, y]) (3 -> 10, tanh, -> 2) is trained on the whole trajectory (every step) by MSE.
The authors generate the data with the training solver itself; we integrate the true equation with classic RK4 at a
tenth of the step (float64), which differs from theirs by the solver's error only. Metric: the training MSE.
"""

from __future__ import annotations

import torch
from torch import nn

from tasks.base import FullBatchTask, Solver


def white_dwarf(t: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    y1, y2 = y[..., 0], y[..., 1]
    return torch.stack([y2, -((y1**2 - c) ** 1.5) - 2 * y2 / (t + 0.5)], dim=-1)


def white_dwarf_trajectory(times: torch.Tensor, c: float = 0.001, substeps: int = 10) -> torch.Tensor:
    """The equation's solution at `times` (RK4, `substeps` steps per interval, float64)."""
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    out = [y]
    grid = times.to(torch.float64).tolist()
    for a, b in zip(grid[:-1], grid[1:]):
        h = (b - a) / substeps
        for k in range(substeps):
            t = torch.tensor(a + k * h, dtype=torch.float64)
            k1 = white_dwarf(t, y, c)
            k2 = white_dwarf(t + h / 2, y + h / 2 * k1, c)
            k3 = white_dwarf(t + h / 2, y + h / 2 * k2, c)
            k4 = white_dwarf(t + h, y + h * k3, c)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return torch.stack(out)


class TimeDependentField(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([t.expand(*y.shape[:-1], 1).to(y), y], dim=-1))


class WhiteDwarf(FullBatchTask):
    lower_is_better = True

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, time_length: float = 5.0,
                 dt: float = 0.005, c: float = 0.001, hidden: int = 10) -> None:
        super().__init__(seed, device, dtype)
        steps = round(time_length / dt)
        if steps < 1 or hidden < 1:
            raise ValueError("task.time_length / task.dt must be at least one step, task.hidden at least 1")
        times = torch.linspace(0, time_length, steps + 1, dtype=torch.float64)
        self.data = white_dwarf_trajectory(times, c).to(device, dtype)[:, None, :]  # (T, batch 1, 2)
        self.ts = times.to(device, dtype)
        torch.manual_seed(seed)
        self.model = TimeDependentField(2, hidden).to(device, dtype)
        self.dataset = f"white-dwarf equation, C={c}, RK4 at dt/10 (generated)"

    def loss(self, solver: Solver) -> torch.Tensor:
        ys = solver.solve(self.model, self.data[0], self.ts)
        return (ys[1:] - self.data[1:]).pow(2).mean()
