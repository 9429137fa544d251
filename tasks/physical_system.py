"""Measured mechanical systems fitted by a neural ODE: the reversible-solvers paper's coupled oscillator and chaotic
double pendulum (v2, repo sammccallum/reversible-solvers, experiments/physical_systems).

Data: the authors' measured trajectories (text, a `%` header line, whitespace-separated columns: trial id, time,
then the state channels; the pendulum file has further derived columns, which are ignored). As the authors' scripts
do, we drop the trial id, shift time to start at 0, keep 4 channels divided by `scale` (100 for the oscillator, 10 for
the pendulum) and interpolate them linearly onto `num_points` times over [0, t_end]. Model: dy/dt = MLP(y) (4 -> 10,
tanh, -> 4), from the first observation, fitted to the whole grid by MSE. The pendulum uses adaptive steps (Bosh3,
rtol = atol = 1e-6) with outputs interpolated between steps, as the authors do.

`data_dir` defaults to ../shared/data/reversible (relative to the repository root); when the file is absent it is
downloaded from the authors' repository (pinned commit) if the network allows. Offline, with `stand_in: true`, the
task simulates the system instead (a damped pair of coupled oscillators; a frictionless double pendulum of unit
masses and lengths), on the same grid and scale, and its `dataset` says so; with `stand_in: false` it fails, naming
the file it needs.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tasks.base import FullBatchTask, Solver

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ("https://raw.githubusercontent.com/sammccallum/reversible-solvers/7a1d6beeea617fe04bb90ff62b319240514e0bf4/"
          "experiments/physical_systems/data/")
SYSTEMS = {
    # name: (file, channel scale, end time of the grid)
    "double_linear": ("real_double_linear_h_1.txt", 100.0, 3.0),
    "double_pend": ("real_double_pend_h_1.txt", 10.0, 2.0),
}


def resolve_data_dir(data_dir: str) -> Path:
    path = Path(data_dir).expanduser()
    return path if path.is_absolute() else ROOT / path


_OFFLINE: list[str] = []  # the first failed download's reason: later ones are not tried again in this process


def fetch(file: Path) -> None:
    """Download one of the authors' data files into place (raises OSError offline)."""
    if _OFFLINE:
        raise OSError(_OFFLINE[0])
    try:
        with urllib.request.urlopen(SOURCE + file.name, timeout=10) as response:  # noqa: S310 - fixed https URL
            payload = response.read()
    except OSError as exc:
        _OFFLINE.append(f"download failed: {exc}")
        raise
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(payload)


def _rk4(f, y0: np.ndarray, grid: np.ndarray, substeps: int = 20) -> np.ndarray:
    out, y = [y0], y0
    for a, b in zip(grid[:-1], grid[1:]):
        h = (b - a) / substeps
        for _ in range(substeps):
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return np.stack(out)


def simulate(system: str, grid: np.ndarray) -> np.ndarray:
    """Offline stand-in: the system's equations of motion from an initial state like the measured one's."""
    if system == "double_linear":  # x1, x2, v1, v2: two unit masses, springs k to the walls and kc between them
        k, kc, damping = 9.0, 3.0, 0.05

        def f(y):
            x1, x2, v1, v2 = y
            return np.array([v1, v2, -k * x1 + kc * (x2 - x1) - damping * v1, -k * x2 - kc * (x2 - x1) - damping * v2])

        return _rk4(f, np.array([0.0, -1.43, -1.41, 0.40]), grid)
    g = 9.81  # o1, o2, w1, w2: unit masses and lengths, the standard double-pendulum equations

    def f(y):
        o1, o2, w1, w2 = y
        d = o1 - o2
        den = 3 - np.cos(2 * d)
        dw1 = (-3 * g * np.sin(o1) - g * np.sin(o1 - 2 * o2) - 2 * np.sin(d) * (w2**2 + w1**2 * np.cos(d))) / den
        dw2 = 2 * np.sin(d) * (2 * w1**2 + 2 * g * np.cos(o1) + w2**2 * np.cos(d)) / den
        return np.array([w1, w2, dw1, dw2])

    return _rk4(f, np.array([-1.13, -1.30, -0.54, -6.16]), grid) / 10


def load_measured(file: Path, scale: float, t_end: float, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(grid times, channels on the grid) from a measured-trajectory file in the authors' text format."""
    raw = np.loadtxt(file, comments="%")
    if raw.ndim != 2 or raw.shape[1] < 6:
        raise ValueError(f"{file} is not a measured trajectory (need trial id, time and 4 channels per row)")
    times = raw[:, 1] - raw[:, 1].min()
    channels = raw[:, 2:6] / scale
    if times[-1] < t_end:
        raise ValueError(f"{file} covers {times[-1]:.3f} s, less than the {t_end} s the grid needs")
    grid = np.linspace(0.0, t_end, num_points)
    return grid, np.stack([np.interp(grid, times, channels[:, i]) for i in range(channels.shape[1])], axis=1)


class AutonomousMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class PhysicalSystem(FullBatchTask):
    lower_is_better = True

    def __init__(self, seed: int, device: torch.device, dtype: torch.dtype, system: str = "double_linear",
                 data_dir: str = "../shared/data/reversible", num_points: int = 500, hidden: int = 10,
                 download: bool = True, stand_in: bool = True) -> None:
        super().__init__(seed, device, dtype)
        if system not in SYSTEMS:
            raise ValueError(f"task.system={system!r} is not a system; choose one of {', '.join(SYSTEMS)}")
        name, scale, t_end = SYSTEMS[system]
        file = resolve_data_dir(data_dir) / name
        reason = None
        if not file.exists():
            try:
                if not download:
                    raise OSError("download=false")
                fetch(file)
            except OSError as exc:
                reason = f"{file} absent and not downloadable ({exc})"
        if reason is None:
            grid, values = load_measured(file, scale, t_end, num_points)
            self.dataset = f"{name} (measured; sammccallum/reversible-solvers @7a1d6be)"
        elif stand_in:
            grid = np.linspace(0.0, t_end, num_points)
            values = simulate(system, grid)
            self.dataset = f"{system} simulated stand-in (offline: {name} not available)"
        else:
            raise ValueError(f"task.data_dir has no {name}: {reason}; put the authors' file there, point "
                             "task.data_dir at it, or set task.stand_in=true for a simulated stand-in")
        self.ts = torch.as_tensor(grid, dtype=dtype, device=device)
        self.data = torch.as_tensor(values, dtype=dtype, device=device)[:, None, :]  # (T, batch 1, 4)
        torch.manual_seed(seed)
        self.model = AutonomousMLP(4, hidden).to(device, dtype)

    def loss(self, solver: Solver) -> torch.Tensor:
        ys = solver.solve(self.model, self.data[0], self.ts)
        return (ys - self.data).pow(2).mean()
