"""The compiled stepping core (`method.compile=true`): the same gradients as the eager steps (float64, to 1e-12),
the same NFE and step counts, compile time reported apart; SDEs and adaptive steps run eagerly. A small field and
Euler steps keep the compile time of this file to seconds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from solvers.base import SolverSpec
from solvers.checkpoint import RecursiveCheckpoint
from solvers.direct_rk import DirectRK
from solvers.reversible import Reversible


class Field(nn.Module):
    """A small time-dependent field: (1 + t) W2 tanh(W1 y + b1) + b2."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(2, 4), nn.Linear(4, 2)

    def forward(self, t, y):
        return self.outer(torch.tanh(self.inner(y))) * (1 + t)


def _gradient(method, field, y0, ts):
    field.zero_grad(set_to_none=True)
    x = y0.clone().requires_grad_(True)
    ys = method.solve(field, x, ts)
    ((ys[1:] ** 2).sum() + ys[-1].sin().sum()).backward()
    return ys.detach(), torch.cat([p.grad.flatten() for p in field.parameters()] + [x.grad.flatten()])


METHODS = {
    "reversible": lambda spec, c: Reversible(spec, coupling=0.9, compile=c),
    "checkpoint offline": lambda spec, c: RecursiveCheckpoint(spec, checkpoints=3, compile=c),
    "checkpoint online": lambda spec, c: RecursiveCheckpoint(spec, checkpoints=3, schedule="online", compile=c),
    "direct_rk": lambda spec, c: DirectRK(spec, compile=c),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_compiled_steps_give_the_eager_gradients(name):
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.randn(3, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.25, 0.7, 1.0], dtype=torch.float64)  # outputs inside the grid: loops between them
    spec = SolverSpec("euler", step_size=0.05)
    eager, compiled = METHODS[name](spec, False), METHODS[name](spec, True)
    ys_ref, ref = _gradient(eager, field, y0, ts)
    eager.nfe.take()
    for _ in range(2):  # the second solve reuses the compiled code
        ys, grad = _gradient(compiled, field, y0, ts)
        assert torch.allclose(ys, ys_ref, rtol=1e-12, atol=0)
        assert ((grad - ref).norm() / ref.norm()).item() < 1e-12
    compiled.nfe.take()
    eager_counts = (_gradient(eager, field, y0, ts), eager.nfe.take())[1]
    compiled_counts = (_gradient(compiled, field, y0, ts), compiled.nfe.take())[1]
    assert compiled_counts == eager_counts
    described = compiled.describe()
    assert described["compile"] is True and eager.describe()["compile"] is False
    stats = described["compile_stats"]  # filled as it compiles: the run record holds the totals
    assert stats["compile_seconds"] > 0 and stats["compiled_functions"] >= 1


def test_adaptive_steps_run_eagerly_with_the_switch_on():
    torch.manual_seed(1)
    field = Field().double()
    y0 = torch.randn(2, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    spec = SolverSpec("bosh3", rtol=1e-6, atol=1e-8)
    _, ref = _gradient(Reversible(spec), field, y0, ts)
    method = Reversible(spec, compile=True)
    _, grad = _gradient(method, field, y0, ts)
    assert torch.equal(grad, ref) and method.describe()["compile_stats"]["compiled_functions"] == 0
