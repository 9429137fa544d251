"""Acrobot trajectories under constant torques, simulated as Symplectic ODE-Net's data (Zhong et al. 2020), which
the seminorm paper's code reuses.

Two links of unit length and mass (centres of mass at 0.5, moments of inertia 1, g = 9.8), the "book" equations of
motion (Sutton & Barto; the OpenAI gym Acrobot), torques u = (u1, u2) on the two joints. A trajectory starts from
angles and velocities uniform in [-3.14, 3.14], then takes `steps` steps of dt = 0.05, each one scipy `solve_ivp`
call (RK45 at its default tolerances) as the original environment does; a trajectory whose angular velocities reach
the environment's limits (4 pi, 9 pi) is drawn again. Each control's trajectories use a generator seeded afresh with
`seed` (the original re-seeds its environment per control). An observation is
(cos q1, cos q2, sin q1, sin q2, dq1, dq2, u1, u2), recorded after each step.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.integrate import solve_ivp

DT = 0.05
MAX_VEL = (4 * np.pi, 9 * np.pi)
# The nine constant controls of the seminorm paper's acrobot experiment.
CONTROLS = ((0.0, 0.0), (0.0, 1.0), (0.0, -1.0), (0.0, 2.0), (0.0, -2.0), (1.0, 0.0), (-1.0, 0.0), (2.0, 0.0),
            (-2.0, 0.0))


def acrobot_dynamics(state: np.ndarray, u: tuple[float, float]) -> np.ndarray:
    """d/dt (q1, q2, dq1, dq2) of the book acrobot, `u[0]` entering the second joint's equation and `u[1]` the
    first's, exactly as the original environment applies its two-component action."""
    m1 = m2 = 1.0
    l1, lc1, lc2, i1, i2, g = 1.0, 0.5, 0.5, 1.0, 1.0, 9.8
    q1, q2, dq1, dq2 = state
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(q2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(q2)) + i2
    phi2 = m2 * lc2 * g * np.cos(q1 + q2 - np.pi / 2)
    phi1 = (-m2 * l1 * lc2 * dq2**2 * np.sin(q2) - 2 * m2 * l1 * lc2 * dq2 * dq1 * np.sin(q2)
            + (m1 * lc1 + m2 * l1) * g * np.cos(q1 - np.pi / 2) + phi2)
    ddq2 = (u[0] + d2 / d1 * phi1 - m2 * l1 * lc2 * dq1**2 * np.sin(q2) - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
    ddq1 = -(u[1] + d2 * ddq2 + phi1) / d1
    return np.array([dq1, dq2, ddq1, ddq2])


def observe(state: np.ndarray, u: tuple[float, float]) -> np.ndarray:
    q1, q2, dq1, dq2 = state
    return np.array([np.cos(q1), np.cos(q2), np.sin(q1), np.sin(q2), dq1, dq2, u[0], u[1]])


def trajectory(rng: np.random.Generator, u: tuple[float, float], steps: int) -> np.ndarray:
    """One valid trajectory, (steps, 8) observations after each step."""
    while True:
        state = rng.uniform(-3.14, 3.14, size=4)
        rows = []
        for _ in range(steps):
            state = solve_ivp(lambda t, y: acrobot_dynamics(y, u), (0.0, DT), state).y[:, -1]
            rows.append(observe(state, u))
        traj = np.stack(rows)
        if all(np.abs(traj[:, 4 + k]).max() < MAX_VEL[k] - 0.001 for k in range(2)):
            return traj


def simulate(trajectories: int, steps: int, seed: int, controls=CONTROLS) -> np.ndarray:
    """(controls, trajectories, steps, 8) observations."""
    out = []
    for u in controls:
        rng = np.random.default_rng(seed)
        out.append(np.stack([trajectory(rng, u, steps) for _ in range(trajectories)]))
    return np.stack(out)


def split_windows(data: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """70/15/15 split by trajectory (the first 70% of each control's trajectories train), then every run of `window`
    consecutive observations of a trajectory is one sample: (N, window, 8) per split."""
    n = data.shape[1]
    a, b = int(n * 0.7), int(n * 0.15)
    parts = data[:, :a], data[:, a:a + b], data[:, a + b:]

    def windows(part: np.ndarray) -> np.ndarray:
        steps = part.shape[2]
        if steps < window:
            raise ValueError(f"trajectories of {steps} steps are shorter than the window of {window}")
        stacked = np.stack([part[:, :, i:i + window] for i in range(steps - window + 1)], axis=2)
        return stacked.reshape(-1, window, part.shape[-1])

    return windows(parts[0]), windows(parts[1]), windows(parts[2])


@functools.lru_cache(maxsize=4)
def acrobot_windows(trajectories: int, steps: int, window: int, data_seed: int,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) windows (N, window, 8) as float64 tensors, simulated once per process (the float64
    gradient check builds the task a second time)."""
    train, val, test = split_windows(simulate(trajectories, steps, data_seed), window)
    return tuple(torch.from_numpy(np.ascontiguousarray(part)) for part in (train, val, test))
