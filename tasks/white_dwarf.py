"""The white-dwarf equation fitted by a time-dependent neural ODE (the reversible-solvers paper, v2).

Settings from repo sammccallum/reversible-solvers, experiments/white_dwarf/white_dwarf.py and reversible/_training.py:
y1' = y2, y2' = -(y1^2 - C)^(3/2) - 2 y2 / (t + 0.5), C = 0.001, y(0) = (1, 0), T = 5, dt = 0.005 (1000 steps);
the model f(t, y) = MLP([t, y]) (3 -> 10, tanh, -> 2) is trained on the whole trajectory (every step) by MSE.
The authors generate the data with the training solver itself; we integrate the true equation with classic RK4 at a
tenth of the step (float64), which differs from theirs by the solver's error only. Metric: the training MSE.
"""

from __future__ import annotations

import torch

from tasks.base import FullBatchTask, Solver, positive_ints
from tasks.data.white_dwarf import white_dwarf_trajectory
from tasks.models.mlp import TanhField


class WhiteDwarf(FullBatchTask):

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, time_length: float = 5.0,
                 dt: float = 0.005, c: float = 0.001, hidden: int = 10) -> None:
        super().__init__(seed, device, dtype)
        steps = round(time_length / dt)
        if steps < 1:
            raise ValueError(f"task.time_length / task.dt must be at least one step, got {time_length} / {dt}")
        positive_ints(hidden=hidden)
        times = torch.linspace(0, time_length, steps + 1, dtype=torch.float64)
        self.data = white_dwarf_trajectory(times, c).to(device, dtype)[:, None, :]  # (T, batch 1, 2)
        self.ts = times.to(device, dtype)
        self.model = TanhField(2, hidden, time=True).to(device, dtype)
        self.dataset = f"white-dwarf equation, C={c}, RK4 at dt/10 (generated)"

    def loss(self, solver: Solver) -> torch.Tensor:
        ys = solver.solve(self.model, self.data[0], self.ts)
        return (ys[1:] - self.data[1:]).pow(2).mean()
