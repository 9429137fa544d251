"""Sample paths of the GQ paper's Ornstein–Uhlenbeck process, the Stratonovich SDE
dX = (mu t - theta X) dt + (sigma + phi t) o dW with mu 0.2, theta 0.1, sigma 0.6, phi 0.15 and X0 ~ U(-3, 3),
simulated with torchsde (reversible Heun) in float64 from a seeded Brownian motion."""

from __future__ import annotations

import torch
import torchsde
from torch import nn

TRUE = {"mu": 0.2, "theta": 0.1, "sigma": 0.6, "phi": 0.15}


class TrueOU(nn.Module):
    noise_type = "diagonal"
    sde_type = "stratonovich"

    def f(self, t, x):
        return TRUE["mu"] * t - TRUE["theta"] * x

    def g(self, t, x):
        return (TRUE["sigma"] + TRUE["phi"] * t) * torch.ones_like(x)


def simulate_ou(initial: int, samples: int, ts: torch.Tensor, dt: float, seed: int) -> torch.Tensor:
    """True paths, shape (initial, samples, len(ts)), float64."""
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(initial, 1, generator=g, dtype=torch.float64) * 6 - 3).repeat_interleave(samples, 0)
    bm = torchsde.BrownianInterval(t0=float(ts[0]), t1=float(ts[-1]), size=x0.shape, dtype=torch.float64,
                                   entropy=seed, levy_area_approximation="none")
    with torch.no_grad():
        paths = torchsde.sdeint(TrueOU(), x0, ts, bm=bm, method="reversible_heun", dt=dt)
    return paths[..., 0].T.reshape(initial, samples, len(ts))
