"""Every gradient method on CUDA: the same float64 gradient as on the CPU, for every method config in conf/method/.

These need a GPU, so CI (CPU only) skips them; `runs/gpu_check.sh` runs them on a GPU machine."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, make_config
from test_reversible_methods import Field, _gradient

from runs.build import ConfigError, build_method

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (none on the CI machine); runs/gpu_check.sh runs it on one")
CASES = [(path.stem, "default") for path in sorted((CONF / "method").glob("*.yaml"))]
CASES += [("adjoint", "seminorm"), ("gq", "seminorm")]
REL_TOL = 1e-7  # float64 on both devices; reduction order (and so an adaptive step) may differ at round-off


def _method(name: str, norm: str):
    """The method on an adaptive solve where it takes one, else on fixed midpoint steps."""
    tight = ["solver=dopri5", "solver.rtol=1e-9", "solver.atol=1e-9"]
    try:
        return build_method(make_config("task=cnf_toy", f"method={name}", f"norm={norm}", *tight))
    except ConfigError:
        return build_method(make_config("task=cnf_toy", f"method={name}", f"norm={norm}", "solver=midpoint",
                                        "++solver.step_size=0.05"))


def test_every_method_config_is_covered():
    """A new conf/method/<name>.yaml joins the CUDA check without editing this file."""
    assert {"direct", "adjoint", "gq", "reversible", "checkpoint"} <= {name for name, _ in CASES}


@NEEDS_CUDA
@pytest.mark.parametrize(("name", "norm"), CASES)
def test_method_on_cuda_matches_cpu(name, norm):
    torch.manual_seed(0)
    field = Field().double()
    y0 = torch.randn(8, 3, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    cpu = _gradient(_method(name, norm), field, y0, ts)
    gpu = _gradient(_method(name, norm), field.cuda(), y0.cuda(), ts.cuda()).cpu()
    assert torch.isfinite(gpu).all()
    assert (torch.linalg.vector_norm(gpu - cpu) / torch.linalg.vector_norm(cpu)).item() < REL_TOL
