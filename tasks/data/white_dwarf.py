"""The white-dwarf equation y1' = y2, y2' = -(y1^2 - C)^(3/2) - 2 y2 / (t + 0.5), y(0) = (1, 0), integrated with
classic RK4 in float64 (McCallum & Foster's white-dwarf experiment generates its data with the training solver
instead; the two differ by that solver's error only)."""

from __future__ import annotations

import torch


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
