"""The reversible step on neural CDEs (through `solve`) and Stratonovich SDEs (through `solve_sde`)."""

from __future__ import annotations

import math

import pytest
import torch
import torchcde
import torchsde
from torch import nn

from solvers.base import SolverSpec
from solvers.checkpoint import RecursiveCheckpoint
from solvers.direct_rk import DirectRK
from solvers.reversible import Reversible


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


class CDEField(nn.Module):
    """dz = g(z) dX: the field multiplies the network's matrix by dX/dt of torchcde's cubic interpolation."""

    def __init__(self, path: torchcde.CubicSpline, hidden: int, channels: int) -> None:
        super().__init__()
        self.path, self.hidden, self.channels = path, hidden, channels
        self.net = nn.Sequential(nn.Linear(hidden, 16), nn.Tanh(), nn.Linear(16, hidden * channels), nn.Tanh())

    def forward(self, t, z):
        g = self.net(z).view(z.shape[0], self.hidden, self.channels)
        return (g @ self.path.derivative(t).unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("name", ["midpoint", "rk4", "dopri5"])
def test_neural_cde_gradient_is_exact(name):
    torch.manual_seed(0)
    times = torch.linspace(0, 1, 12, dtype=torch.float64)
    data = torch.cat([times[None, :, None].expand(4, -1, 1), torch.randn(4, 12, 2, dtype=torch.float64).cumsum(1)],
                     dim=-1)
    path = torchcde.CubicSpline(torchcde.natural_cubic_coeffs(data, times), times)
    field = CDEField(path, hidden=5, channels=3).double()
    z0 = torch.randn(4, 5, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)

    def gradient(method):
        field.zero_grad()
        z = z0.clone().requires_grad_(True)
        zs = method.solve(field, z, ts)
        zs[1:].pow(2).sum().backward()
        return zs.detach(), torch.cat([p.grad.flatten() for p in field.parameters()] + [z.grad.flatten()])

    spec = SolverSpec(name, step_size=0.01)
    zs, grad = gradient(Reversible(spec))
    zs_ref, ref = gradient(Reversible(spec, backward="autograd"))
    assert torch.equal(zs, zs_ref) and _rel(grad, ref) < 1e-10
    # and it solves the CDE: close to the base scheme's own solution at this step size
    assert _rel(zs, DirectRK(spec).solve(field, z0, ts).detach()) < 1e-3


class GeometricBM(nn.Module):
    """dY = a Y dt + b Y o dW (Stratonovich), learnable a, b: Y_T = Y_0 exp(a T + b W_T)."""

    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def f(self, t, y):
        return self.a * y

    def g(self, t, y):
        return self.b * y


class NeuralSDE(nn.Module):
    sde_type = "stratonovich"

    def __init__(self, noise_type: str, dim: int = 3, brownian: int = 2) -> None:
        super().__init__()
        self.noise_type, self.dim, self.brownian = noise_type, dim, brownian
        self.drift = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, dim))
        out = dim if noise_type == "diagonal" else dim * brownian
        self.diffusion = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, out), nn.Sigmoid())

    def f(self, t, y):
        return self.drift(y)

    def g(self, t, y):
        g = self.diffusion(y)
        return g if self.noise_type == "diagonal" else g.view(-1, self.dim, self.brownian)


@pytest.mark.parametrize("noise_type", ["diagonal", "general"])
def test_stratonovich_sde_gradient_is_exact(noise_type):
    """Reconstructing backwards re-queries the Brownian interval (no noise stored) and still gives the gradient of
    the discrete solve; checkpointing through the same SDE steps gives it too."""
    torch.manual_seed(1)
    sde = NeuralSDE(noise_type).double()
    y0 = torch.randn(6, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    size = (6, 3) if noise_type == "diagonal" else (6, 2)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=size, dtype=torch.float64, entropy=7)

    def gradient(method):
        sde.zero_grad()
        y = y0.clone().requires_grad_(True)
        ys = method.solve_sde(sde, y, ts, bm)
        ys[1:].pow(2).sum().backward()
        return ys.detach(), torch.cat([p.grad.flatten() for p in sde.parameters()] + [y.grad.flatten()])

    spec = SolverSpec("midpoint", step_size=0.02)
    ys, grad = gradient(Reversible(spec))
    ys_ref, ref = gradient(Reversible(spec, backward="autograd"))
    assert torch.equal(ys, ys_ref) and _rel(grad, ref) < 1e-10
    _, direct = gradient(DirectRK(spec))
    _, checkpointed = gradient(RecursiveCheckpoint(spec, checkpoints=3))
    assert _rel(checkpointed, direct) < 1e-12


def test_sde_converges_to_the_stratonovich_solution():
    """Geometric Brownian motion with b = 1, where the Ito and Stratonovich solutions differ by exp(-T/2): the
    reversible midpoint scheme's strong error falls with the step and ends far below that gap."""
    sde = GeometricBM(0.3, 1.0)
    y0 = torch.ones(400, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(400, 1), dtype=torch.float64, entropy=3)
    exact = torch.exp(0.3 + bm(0.0, 1.0))
    errors = []
    with torch.no_grad():
        for h in (2.0**-3, 2.0**-7):
            errors.append((Reversible(SolverSpec("midpoint", step_size=h)).solve_sde(sde, y0, ts, bm)[-1] - exact)
                          .abs().mean().item())
    ito_gap = (exact * (1 - math.exp(-0.5))).abs().mean().item()
    assert errors[1] < errors[0] / 4
    assert errors[1] < ito_gap / 20


def test_sde_needs_a_stratonovich_scheme_and_fixed_steps():
    sde = GeometricBM(0.3, 1.0)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(2, 1), dtype=torch.float64)
    y0, ts = torch.ones(2, 1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="Ito"):
        Reversible(SolverSpec("euler", step_size=0.1)).solve_sde(sde, y0, ts, bm)
    with pytest.raises(ValueError, match="fixed steps"):
        Reversible(SolverSpec("dopri5", rtol=1e-3, atol=1e-3)).solve_sde(sde, y0, ts, bm)
