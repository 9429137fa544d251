"""The GQ paper's tasks at smoke scale, the Wong–Zakai path, SDE solves through the method interface, data loaders."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch
import torchsde
from conftest import make_config
from torch import nn

from runs.loop import run
from solvers.adjoint import ContinuousAdjoint
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop
from solvers.gq import GaussLegendreAdjoint
from tasks.data.images import load_images, read_idx
from tasks.data.nested_spheres import nested_spheres
from tasks.models.wong_zakai import WongZakaiODE, cosine_basis

SPEC = SolverSpec("dopri5", rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(("task", "metric"), [("nested_spheres", "test_accuracy"), ("sines", "test_mse"),
                                              ("images", "test_accuracy"), ("ou_sde", "test_kl")])
def test_tasks_train_under_gq_at_smoke_scale(tmp_path, task, metric):
    result = run(make_config(f"task={task}", "method=gq"), tmp_path)
    assert result["status"] == "ok", result["error"]
    assert math.isfinite(result[metric]) and result["metric"] == metric
    assert result["bwd_nfe"] > 0 and result["gtol"] == 0.2
    # the float64 gradient check: GQ at rtol 1e-3 against direct backprop at 1e-10
    assert result["grad_rel_error"] is not None and result["grad_rel_error"] < 5e-2


def test_images_use_the_offline_stand_in_and_say_so(tmp_path):
    result = run(make_config("task=images", "method=direct", "train.grad_error=false"), tmp_path)
    assert result["dataset"].startswith("scikit-learn 8x8 digits (offline stand-in")


def test_sines_times_are_regular_or_irregular(tmp_path):
    from tasks.sines import Sines

    regular = Sines(0, torch.device("cpu"), torch.float64, width=4, num_times=50, regular=True)
    irregular = Sines(0, torch.device("cpu"), torch.float64, width=4, num_times=50, regular=False)
    assert len(regular.ts) == 50 and torch.allclose(regular.ts.diff(), regular.ts.diff()[0].expand(49))
    assert irregular.ts[0] == 0 and torch.all(irregular.ts.diff() > 0) and irregular.ts.diff().std() > 1e-3
    # the data are y = A sin t + B cos t from the initial state [B, A]
    b, a = regular.train_x0[:, 0], regular.train_x0[:, 1]
    t = regular.ts[:, None]
    assert torch.allclose(regular.train_y[..., 0], a * torch.sin(t) + b * torch.cos(t))


def test_nested_spheres_data():
    x, y = nested_spheres(200, torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    assert (y == 0).sum() == (y == 1).sum() == 200
    assert torch.all(r[y == 0] < 0.4) and torch.all((r[y == 1] > 0.7) & (r[y == 1] < 0.9))


def test_toy_gradient_errors_are_small_at_tight_tolerance_and_grow_when_loose(tmp_path):
    tight = run(make_config("task=toy_gradient", "method=gq", "solver.rtol=1e-8", "solver.atol=1e-8",
                            "method.gtol=0.4"), tmp_path / "tight")
    loose = run(make_config("task=toy_gradient", "method=adjoint", "solver.rtol=1e-3", "solver.atol=1e-3"),
                tmp_path / "loose")
    for key in ("loss", "dz0", "da", "dT"):
        assert len(tight[f"rel_error_{key}"]) == 3  # T = 19, 20, 21 at smoke scale
        assert tight[f"max_rel_error_{key}"] < 1e-5
    assert loose["max_rel_error_da"] > 100 * tight["max_rel_error_da"]


# --- Wong–Zakai -----------------------------------------------------------------------------------------------------


def test_cosine_series_has_brownian_variance():
    """int_0^t xi(s) ds with the truncated Karhunen–Loève series has variance -> t (Brownian motion) as N grows."""
    t0, t1, n = 0.0, 2.0, 200
    s = torch.linspace(t0, t1, 2001, dtype=torch.float64)
    basis = torch.stack([cosine_basis(x, t0, t1, n) for x in s])  # (S, N)
    integral = torch.cumulative_trapezoid(basis, s, dim=0)  # (S-1, N): int_0^t phi_n
    variance = (integral**2).sum(1)  # E[(sum xi_n int phi_n)^2] = sum (int phi_n)^2
    assert torch.allclose(variance, s[1:], atol=5e-3)


class _SDE(nn.Module):
    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self) -> None:
        super().__init__()
        self.drift = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        self.diffusion = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))

    def f(self, t, y):
        return self.drift(y)

    def g(self, t, y):
        return torch.sigmoid(self.diffusion(y))


def test_wong_zakai_ode_trains_under_every_ode_method():
    """The smooth-noise ODE is a plain ODE: GQ, the adjoint and direct backprop agree on its gradient."""
    torch.manual_seed(0)
    sde = _SDE().double()
    ode = WongZakaiODE(sde, 0.0, 1.0, ncosines=5)
    x0 = torch.randn(6, 1, dtype=torch.float64)
    ode.resample(x0, torch.Generator().manual_seed(1))
    ts = torch.linspace(0, 1, 5, dtype=torch.float64)
    tight = SolverSpec("dopri5", rtol=1e-10, atol=1e-10)
    grads = []
    for method in (DirectBackprop(tight), ContinuousAdjoint(tight), GaussLegendreAdjoint(tight)):
        sde.zero_grad()
        method.solve(ode, x0, ts).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in sde.parameters()]))
    assert torch.allclose(grads[1], grads[0], rtol=1e-6) and torch.allclose(grads[2], grads[0], rtol=1e-6)


def test_ou_wong_zakai_trains_transfers_and_evaluates(tmp_path):
    """Acceptance 2: result.json has the ODE-training metric and the transferred SDE's metric, and training moves
    the SDE's metric (the parameters really are the SDE's)."""
    trained = run(make_config("task=ou_sde", "method=gq", "train.iterations=4", "train.lr=0.05"), tmp_path / "a")
    untrained_cfg = make_config("task=ou_sde", "method=gq", "train.iterations=1", "train.lr=1e-9")
    untrained = run(untrained_cfg, tmp_path / "b")
    assert trained["status"] == "ok", trained["error"]
    for key in ("test_kl", "ode_test_kl", "final_loss"):
        assert math.isfinite(trained[key]), key
    assert trained["test_kl"] != untrained["test_kl"]


@pytest.mark.parametrize("method", ["adjoint", "direct"])
def test_ou_sde_baseline_trains_through_solve_sde(tmp_path, method):
    result = run(make_config("task=ou_sde", "task.train_as=sde", f"method={method}", "method.sde_dt=0.1"), tmp_path)
    assert result["status"] == "ok", result["error"]
    assert "ode_test_kl" not in result and math.isfinite(result["test_kl"])
    assert result["fwd_nfe"] > 0 and (result["bwd_nfe"] > 0) == (method == "adjoint")


def test_ou_sde_under_gq_as_sde_fails_clearly(tmp_path):
    result = run(make_config("task=ou_sde", "task.train_as=sde", "method=gq"), tmp_path)
    assert result["status"] == "failed" and "does not solve SDEs" in result["error"]


# --- SDE solves through the method interface --------------------------------------------------------------------


def _sde_gradient(method, sde, y0, ts):
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=y0.shape, dtype=torch.float64, entropy=3)
    sde.zero_grad()
    method.solve_sde(sde, y0, ts, bm).pow(2).sum().backward()
    return torch.cat([p.grad.flatten() for p in sde.parameters()]), method.nfe.take()


def test_sde_adjoint_with_reversible_heun_matches_direct_and_counts():
    """Reversible Heun's adjoint reconstructs the forward path exactly: same gradient as backprop through sdeint.
    Counts: the forward is the same for both; direct backprop has no backward evaluations."""
    torch.manual_seed(0)
    sde = _SDE().double()
    y0 = torch.randn(4, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    direct, direct_counts = _sde_gradient(DirectBackprop(SPEC, sde_dt=0.125), sde, y0, ts)
    adjoint, adjoint_counts = _sde_gradient(ContinuousAdjoint(SPEC, sde_dt=0.125), sde, y0, ts)
    assert torch.allclose(adjoint, direct, rtol=1e-10, atol=1e-12)
    assert direct_counts.bwd_nfe == 0 and adjoint_counts.bwd_nfe > 0
    assert direct_counts.fwd_nfe == adjoint_counts.fwd_nfe >= 8  # at least one drift evaluation per step (8 steps)
    # midpoint: the adjoint is a different discretisation, close but not equal
    mid_direct, _ = _sde_gradient(DirectBackprop(SPEC, sde_solver="midpoint", sde_dt=0.125), sde, y0, ts)
    mid_adjoint, _ = _sde_gradient(ContinuousAdjoint(SPEC, sde_solver="midpoint", sde_dt=0.125), sde, y0, ts)
    assert 0 < (mid_adjoint - mid_direct).norm() / mid_direct.norm() < 1e-2


def test_sde_solver_settings_are_checked():
    with pytest.raises(ValueError, match="not a torchsde solver"):
        DirectBackprop(SPEC, sde_solver="dopri5")
    with pytest.raises(ValueError, match="sde_dt"):
        ContinuousAdjoint(SPEC, sde_dt=0)
    method = DirectBackprop(SPEC, sde_solver="euler")
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(2, 1), dtype=torch.float64)
    with pytest.raises(ValueError, match="does not solve stratonovich SDEs"):
        method.solve_sde(_SDE().double(), torch.zeros(2, 1, dtype=torch.float64),
                         torch.tensor([0.0, 1.0], dtype=torch.float64), bm)


# --- image data ------------------------------------------------------------------------------------------------------


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_are_read_in_their_real_format(tmp_path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    labels = {"train": rng.integers(0, 10, 12), "t10k": rng.integers(0, 10, 5)}
    for split in ("train", "t10k"):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images[split])
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels[split])
    assert read_idx(tmp_path / "train-labels-idx1-ubyte.gz").tolist() == labels["train"].tolist()
    data = load_images("mnist", tmp_path, download=False)  # files directly in data_dir
    assert data.description.startswith("MNIST") and data.train_x.shape == (12, 1, 28, 28)
    assert data.test_y.tolist() == labels["t10k"].tolist()
    assert torch.allclose(data.scaled(data.train_x)[3, 0], torch.from_numpy(images["train"][3] / 255.0).float())
    assert load_images("auto", tmp_path, download=False).description.startswith("MNIST")
    assert load_images("auto", tmp_path / "empty", download=False).description.startswith("scikit-learn 8x8 digits")


def _check_gradient(task, method):
    task.model.zero_grad()
    params = list(task.model.parameters())
    grads = torch.autograd.grad(task.check_loss(method), params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


@pytest.mark.parametrize("rtol", [1e-3, 1e-4])
@pytest.mark.parametrize("task_name", ["nested_spheres", "sines", "ou_sde"])
def test_gq_error_on_the_paper_tasks_no_worse_than_adjoint(task_name, rtol):
    """Acceptance 1 on the paper's own models (float64, default GQ settings): the check-loss gradient's error
    against direct backprop at 1e-10 is at most the continuous adjoint's at the same loose tolerance."""
    from tasks.nested_spheres import NestedSpheres
    from tasks.ou_sde import OUSDE
    from tasks.sines import Sines

    cpu = torch.device("cpu")
    task = {"nested_spheres": lambda: NestedSpheres(0, cpu, torch.float64, width=100, check_size=50),
            "sines": lambda: Sines(0, cpu, torch.float64, width=100),
            "ou_sde": lambda: OUSDE(0, cpu, torch.float64, width=20, train_initial=4, test_initial=2, samples=10,
                                    num_times=51, data_dt=0.05)}[task_name]()
    ref = _check_gradient(task, DirectBackprop(SolverSpec("dopri5", rtol=1e-10, atol=1e-10)))
    spec = SolverSpec("dopri5", rtol=rtol, atol=rtol)
    error = lambda method: ((_check_gradient(task, method) - ref).norm() / ref.norm()).item()
    assert error(GaussLegendreAdjoint(spec)) <= 1.02 * error(ContinuousAdjoint(spec))
