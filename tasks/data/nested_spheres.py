"""Dupont et al. 2019's nested spheres in 2-D: class 0 uniform inside radius 0.4, class 1 uniform in the ring
0.7 < r < 0.9 (rejection sampling from the square [-1, 1]^2)."""

from __future__ import annotations

import torch


def nested_spheres(per_class: int, generator: torch.Generator, inner: float = 0.4,
                   ring: tuple[float, float] = (0.7, 0.9)) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` points of each class, in a fixed shuffled order."""
    inside, outside = [], []
    while sum(len(x) for x in inside) < per_class or sum(len(x) for x in outside) < per_class:
        x = torch.rand(4 * per_class, 2, generator=generator, dtype=torch.float64) * 2 - 1
        r = x.norm(dim=1)
        inside.append(x[r < inner])
        outside.append(x[(r > ring[0]) & (r < ring[1])])
    x = torch.cat([torch.cat(inside)[:per_class], torch.cat(outside)[:per_class]])
    labels = torch.cat([torch.zeros(per_class), torch.ones(per_class)]).long()
    order = torch.randperm(2 * per_class, generator=generator)
    return x[order], labels[order]
