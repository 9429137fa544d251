"""FFJORD's 2-D toy densities, generated in code (no download). Each sampler takes (n, generator) and returns an
(n, 2) float64 tensor on the CPU; the shapes follow the densities of Grathwohl et al. 2019 (FFJORD), Fig. 2."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Sampler = Callable[[int, torch.Generator], torch.Tensor]


def _randn(n: int, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(n, *shape, generator=g, dtype=torch.float64)


def _rand(n: int, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=g, dtype=torch.float64)


def eight_gaussians(n: int, g: torch.Generator) -> torch.Tensor:
    angles = torch.randint(0, 8, (n,), generator=g).double() * (math.pi / 4)
    centers = 4.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return (centers + 0.5 * _randn(n, g, 2)) / math.sqrt(2)


def pinwheel(n: int, g: torch.Generator, arms: int = 5) -> torch.Tensor:
    arm = torch.randint(0, arms, (n,), generator=g).double()
    radial = 1.0 + 0.3 * _randn(n, g)
    tangential = 0.1 * _randn(n, g)
    angle = arm * (2 * math.pi / arms) + 0.25 * radial.exp()
    x = radial * angle.cos() - tangential * angle.sin()
    y = radial * angle.sin() + tangential * angle.cos()
    return 2.0 * torch.stack([x, y], dim=1)


def two_spirals(n: int, g: torch.Generator) -> torch.Tensor:
    r = _rand(n, g).sqrt() * (3 * math.pi)
    sign = torch.randint(0, 2, (n,), generator=g).double() * 2 - 1
    x = sign * (-r.cos() * r) + 0.5 * _rand(n, g)
    y = sign * (r.sin() * r) + 0.5 * _rand(n, g)
    return torch.stack([x, y], dim=1) / 3 + 0.1 * _randn(n, g, 2)


def checkerboard(n: int, g: torch.Generator) -> torch.Tensor:
    x = _rand(n, g) * 4 - 2
    y = _rand(n, g) - torch.randint(0, 2, (n,), generator=g).double() * 2
    y = y + torch.floor(x) % 2
    return 2.0 * torch.stack([x, y], dim=1)


def rings(n: int, g: torch.Generator) -> torch.Tensor:
    radius = (torch.randint(0, 4, (n,), generator=g).double() + 1) * 0.75
    angle = _rand(n, g) * 2 * math.pi
    return radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1) + 0.08 * _randn(n, g, 2)


def circles(n: int, g: torch.Generator) -> torch.Tensor:
    radius = torch.where(torch.rand(n, generator=g) < 0.5, 1.5, 3.0).double()
    angle = _rand(n, g) * 2 * math.pi
    return radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1) + 0.2 * _randn(n, g, 2)


def moons(n: int, g: torch.Generator) -> torch.Tensor:
    upper = torch.rand(n, generator=g) < 0.5
    angle = _rand(n, g) * math.pi
    x = torch.where(upper, angle.cos(), 1 - angle.cos())
    y = torch.where(upper, angle.sin(), 0.5 - angle.sin())
    return 2.0 * (torch.stack([x, y], dim=1) + 0.1 * _randn(n, g, 2) - torch.tensor([0.5, 0.25]).double())


def swissroll(n: int, g: torch.Generator) -> torch.Tensor:
    t = 1.5 * math.pi * (1 + 2 * _rand(n, g))
    return torch.stack([t * t.cos(), t * t.sin()], dim=1) / 5 + 0.1 * _randn(n, g, 2)


TOY_DENSITIES: dict[str, Sampler] = {
    "8gaussians": eight_gaussians,
    "pinwheel": pinwheel,
    "2spirals": two_spirals,
    "checkerboard": checkerboard,
    "rings": rings,
    "circles": circles,
    "moons": moons,
    "swissroll": swissroll,
}
