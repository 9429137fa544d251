"""Symplectic ODE-Net with angle embedding and control (Zhong et al. 2020, `SymODEN_T`), as the seminorm paper used it.

The state is x = (cos q, sin q, dq/dt, u) for n joints and constant controls u. The network learns
  M^{-1}(q) (`mass_net`, positive definite: L L^T + 0.1 I),  V(q) (`potential_net`),  g(q) (`control_net`),
and the dynamics follow from the Hamiltonian H(q, p) = p^T M^{-1}(q) p / 2 + V(q) with p = M(q) dq/dt:
  dq/dt = dH/dp,   dp/dt = sin q * dH/dcos q - cos q * dH/dsin q + g(q) u,
  d(cos q)/dt = -sin q dq/dt,   d(sin q)/dt = cos q dq/dt,   d(dq/dt)/dt = M^{-1} dp/dt + (d M^{-1}/dt) p,
  du/dt = 0.
Derivatives of H and M^{-1} are taken with autograd inside the field (create_graph when the solve is being
differentiated), so an adjoint differentiates a field that itself contains gradients.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import softplus


class SoftplusMLP(nn.Module):
    """`layers` softplus hidden layers of width `hidden`, then a linear output."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, layers: int = 2) -> None:
        super().__init__()
        sizes = [dim_in] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(hidden, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = softplus(layer(x))
        return self.out(x)


class PositiveDefinite(nn.Module):
    """q -> L L^T + 0.1 I with L lower triangular from an MLP (three softplus layers, as the original `PSD`)."""

    def __init__(self, dim_in: int, hidden: int, n: int) -> None:
        super().__init__()
        self.n = n
        self.rows, self.cols = torch.tril_indices(n, n)
        self.mlp = SoftplusMLP(dim_in, hidden, n * (n + 1) // 2, layers=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.new_zeros(x.shape[0], self.n, self.n)
        L[:, self.rows, self.cols] = self.mlp(x)
        return L @ L.transpose(1, 2) + 0.1 * torch.eye(self.n, dtype=x.dtype, device=x.device)


class SymODENField(nn.Module):
    """The vector field on x = (cos q, sin q, dq/dt, u), shape (B, 3n + m)."""

    def __init__(self, joints: int, controls: int, mass_hidden: int, potential_hidden: int, control_hidden: int,
                 ) -> None:
        super().__init__()
        self.n, self.m = joints, controls
        self.mass_net = PositiveDefinite(2 * joints, mass_hidden, joints)  # M^{-1}(q)
        self.potential_net = SoftplusMLP(2 * joints, potential_hidden, 1)
        self.control_net = SoftplusMLP(2 * joints, control_hidden, joints * controls)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        differentiable = torch.is_grad_enabled()
        n = self.n
        with torch.enable_grad():
            cos_sin, dq, u = x[:, : 2 * n], x[:, 2 * n: 3 * n], x[:, 3 * n:]
            p = torch.linalg.solve(self.mass_net(cos_sin), dq)  # p = M dq/dt
            qp = torch.cat([cos_sin, p], dim=1)
            if not qp.requires_grad:
                qp = qp.detach().requires_grad_(True)
            cos_sin, p = qp[:, : 2 * n], qp[:, 2 * n:]
            cos_q, sin_q = cos_sin[:, :n], cos_sin[:, n:]
            m_inv = self.mass_net(cos_sin)
            energy = 0.5 * (p.unsqueeze(1) @ m_inv @ p.unsqueeze(2)).reshape(-1) + self.potential_net(cos_sin)[:, 0]
            (d_energy,) = torch.autograd.grad(energy.sum(), qp, create_graph=True)
            dh_dcos, dh_dsin, dh_dp = d_energy[:, :n], d_energy[:, n: 2 * n], d_energy[:, 2 * n:]
            force = (self.control_net(cos_sin).view(-1, n, self.m) @ u.unsqueeze(2)).squeeze(2)
            dq_dt = dh_dp
            dp_dt = sin_q * dh_dcos - cos_q * dh_dsin + force
            d_cos_sin = torch.cat([-sin_q * dq_dt, cos_q * dq_dt], dim=1)
            dm_inv = torch.stack([
                torch.stack([
                    (torch.autograd.grad(m_inv[:, r, c].sum(), cos_sin, create_graph=True)[0] * d_cos_sin).sum(1)
                    for c in range(n)
                ], dim=1)
                for r in range(n)
            ], dim=1)
            ddq = (m_inv @ dp_dt.unsqueeze(2) + dm_inv @ p.unsqueeze(2)).squeeze(2)
            out = torch.cat([d_cos_sin, ddq, torch.zeros_like(u)], dim=1)
        return out if differentiable else out.detach()
