"""The reversible-solvers paper's measured mechanical systems (v2, repo sammccallum/reversible-solvers,
experiments/physical_systems): a coupled oscillator and a chaotic double pendulum, or simulated stand-ins offline.

The authors' files are text: a `%` header line, whitespace-separated columns: trial id, time, then the state
channels (the pendulum file has further derived columns, which are ignored). As the authors' scripts do, we drop the
trial id, shift time to start at 0, keep 4 channels divided by `scale` (100 for the oscillator, 10 for the pendulum)
and interpolate them linearly onto `num_points` times over [0, t_end].

`data_dir` is relative to the repository root; when the file is absent it is downloaded from the authors'
repository (pinned commit) if the network allows. Offline, the stand-in simulates the system (a damped pair of
coupled oscillators; a frictionless double pendulum of unit masses and lengths) on the same grid and scale.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository
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


def load_system(system: str, data_dir: str, num_points: int, download: bool, stand_in: bool,
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """(grid times, channels on the grid (num_points, 4), description) of `system`: the authors' measured file
    (downloaded into `data_dir` when absent and `download`), else, with `stand_in`, the simulated system."""
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
        return grid, values, f"{name} (measured; sammccallum/reversible-solvers @7a1d6be)"
    if stand_in:
        grid = np.linspace(0.0, t_end, num_points)
        return grid, simulate(system, grid), f"{system} simulated stand-in (offline: {name} not available)"
    raise ValueError(f"task.data_dir has no {name}: {reason}; put the authors' file there, point "
                     "task.data_dir at it, or set task.stand_in=true for a simulated stand-in")
