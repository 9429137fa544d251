"""Continuous normalising flows (FFJORD): the field on the augmented state [z, l] and the divergence estimators.

We integrate from data x at t=0 to z(T) with dz/dt = f(t, z) and dl/dt = tr(df/dz), l(0) = 0; then by the
instantaneous change of variables log p(x) = log N(z(T); 0, I) + l(T). The state is one tensor (B, D+1), so every
gradient method sees a plain ODE.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class ConcatSquashLinear(nn.Module):
    """Linear layer whose output is gated and shifted by functions of t (FFJORD's `concatsquash`)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.gate = nn.Linear(1, dim_out)
        self.shift = nn.Linear(1, dim_out, bias=False)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = t.reshape(1, 1).to(x)
        return self.linear(x) * torch.sigmoid(self.gate(tt)) + self.shift(tt)


class ConcatSquashNet(nn.Module):
    """The FFJORD toy network: concat-squash layers of width `hidden`, tanh between them."""

    def __init__(self, dim: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        widths = [dim] + [hidden] * num_layers + [dim]
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            z = layer(t, z)
            if i < len(self.layers) - 1:
                z = torch.tanh(z)
        return z


def exact_divergence(dz: torch.Tensor, z: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """tr(d dz / dz) by one backward pass per dimension: exact, cheap in 2-D."""
    div = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for i in range(z.shape[1]):
        grad = torch.autograd.grad(dz[:, i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
        div = div + grad[:, i]
    return div


def hutchinson_divergence(dz: torch.Tensor, z: torch.Tensor, noise: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """Unbiased estimate e^T (d dz / dz) e with a noise vector e held fixed over the whole solve."""
    (vjp,) = torch.autograd.grad(dz, z, noise, create_graph=create_graph)
    return (vjp * noise).flatten(1).sum(1)


class CNFField(nn.Module):
    """d/dt [z, l] = [f(t, z), tr(df/dz)] for a network f; `noise` switches to the Hutchinson estimator."""

    def __init__(self, net: nn.Module, dim: int) -> None:
        super().__init__()
        self.net = net
        self.dim = dim
        self.noise: torch.Tensor | None = None

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():
            z = state[:, : self.dim]
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            dz = self.net(t, z)
            if self.noise is None:
                div = exact_divergence(dz, z, create_graph=differentiable)
            else:
                div = hutchinson_divergence(dz, z, self.noise, create_graph=differentiable)
        out = torch.cat([dz, div[:, None]], dim=1)
        return out if differentiable else out.detach()


def standard_normal_logprob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(1)


def flow_nll(field: CNFField, x: torch.Tensor, ts: torch.Tensor, solve: Callable[..., torch.Tensor]) -> torch.Tensor:
    """Mean negative log-likelihood of the points x (B, D) under the flow of `field` from ts[0] to ts[-1]: one
    `solve` (the gradient method's) of the state [x, 0]."""
    state0 = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
    state_T = solve(field, state0, ts)[-1]
    logp = standard_normal_logprob(state_T[:, : field.dim]) + state_T[:, field.dim]
    return -logp.mean()
