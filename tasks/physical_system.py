"""Measured mechanical systems fitted by a neural ODE: the reversible-solvers paper's coupled oscillator and chaotic
double pendulum (v2, repo sammccallum/reversible-solvers, experiments/physical_systems).

Data (tasks/data/physical_systems.py): the authors' measured trajectories, 4 channels scaled and interpolated onto
`num_points` times. Model: dy/dt = MLP(y) (4 -> 10, tanh, -> 4), from the first observation, fitted to the whole grid
by MSE. The pendulum uses adaptive steps (Bosh3, rtol = atol = 1e-6) with outputs interpolated between steps, as the
authors do.

`data_dir` defaults to ../shared/data/reversible (relative to the repository root); when the file is absent it is
downloaded from the authors' repository (pinned commit) if the network allows. Offline, with `stand_in: true`, the
task simulates the system instead, on the same grid and scale, and its `dataset` says so; with `stand_in: false` it
fails, naming the file it needs.
"""

from __future__ import annotations

import torch

from tasks.base import FullBatchTask, Solver
from tasks.data.physical_systems import load_system
from tasks.models.mlp import TanhField


class PhysicalSystem(FullBatchTask):

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, system: str = "double_linear",
                 data_dir: str = "../shared/data/reversible", num_points: int = 500, hidden: int = 10,
                 download: bool = True, stand_in: bool = True) -> None:
        super().__init__(seed, device, dtype)
        grid, values, self.dataset = load_system(system, data_dir, num_points, download, stand_in)
        self.ts = torch.as_tensor(grid, dtype=dtype, device=device)
        self.data = torch.as_tensor(values, dtype=dtype, device=device)[:, None, :]  # (T, batch 1, 4)
        self.model = TanhField(4, hidden).to(device, dtype)

    def loss(self, solver: Solver) -> torch.Tensor:
        ys = solver.solve(self.model, self.data[0], self.ts)
        return (ys - self.data).pow(2).mean()
