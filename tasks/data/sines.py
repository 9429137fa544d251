"""The GQ paper's sine curves y(t) = A sin t + B cos t, (A, B) ~ U(-1, 1)^2 per curve, observed at times on
[0, 2 pi] that are regular (linspace) or irregular (sorted uniform draws, the first set to 0)."""

from __future__ import annotations

import math

import torch


def sine_curves(n: int, times: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial states [B, A] (n, 2) and observations y(t) (len(times), n, 1)."""
    ab = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 2 - 1
    a, b = ab[:, 0], ab[:, 1]
    y = a[None] * torch.sin(times[:, None]) + b[None] * torch.cos(times[:, None])
    return torch.stack([b, a], dim=1), y[..., None]


def observation_times(num_times: int, regular: bool, generator: torch.Generator) -> torch.Tensor:
    if regular:
        return torch.linspace(0, 2 * math.pi, num_times, dtype=torch.float64)
    times = torch.sort(torch.rand(num_times, generator=generator, dtype=torch.float64) * 2 * math.pi).values
    times[0] = 0.0
    return times
