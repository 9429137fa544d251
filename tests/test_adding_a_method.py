"""Adding a method is two files and nothing else (README, "Adding a method"): a GradientMethod subclass and its
conf/method YAML. Here both live outside the repository — the class in this test file, the YAML in a temporary
config directory put on Hydra's search path — and the method trains at smoke scale through the real entry point,
so no file of the harness is touched."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import torch
from conftest import ROOT, make_config, read_result

from runs.build import build_method, build_task
from solvers.base import GradientMethod
from solvers.direct_rk import DirectRK


class EulerByBackprop(GradientMethod):
    """Explicit Euler with steps no longer than solver.step_size, differentiated by autograd."""

    name = "euler_backprop"
    own_scheme = "explicit Euler"  # fixed steps; `solver=` gives only the step size

    def _solve(self, field, y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        ys, y = [y0], y0
        for t0, t1 in zip(ts[:-1].tolist(), ts[1:].tolist()):
            n = max(1, math.ceil((t1 - t0) / self.solver.step_size - 1e-9))
            h = (t1 - t0) / n
            for k in range(n):
                y = y + h * field(torch.tensor(t0 + k * h, dtype=y.dtype), y)
            ys.append(y)
        return torch.stack(ys)


YAML = "_target_: test_adding_a_method.EulerByBackprop\nname: euler_backprop\n"


def test_a_method_defined_outside_the_harness_trains_through_config(tmp_path):
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "euler_backprop.yaml").write_text(YAML)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}  # the class
    done = subprocess.run([sys.executable, "-m", "runs.train", "task=cnf_toy", "method=euler_backprop", "solver=euler",
                           "solver.step_size=0.125", "scale=smoke", "logger=none", "progress=false",
                           f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = read_result(tmp_path / "run")
    assert result["status"] == "ok" and result["method"] == "euler_backprop"
    # by hand: cnf_toy integrates over [0, time_length = 0.5], so 4 Euler steps of 0.125, one evaluation each; autograd
    # replays them, so there is no backward evaluation
    assert (result["fwd_nfe"], result["bwd_nfe"], result["eval_fwd_nfe"]) == (4, 0, 4)
    assert math.isfinite(result["test_nll"]) and result["grad_rel_error"] is not None


def test_its_gradient_is_backprop_through_the_same_euler_steps():
    cfg = make_config("task=cnf_toy", "solver=euler", "solver.step_size=0.125", "method=direct_rk", "dtype=float64")
    task = build_task(cfg, torch.device("cpu"), torch.float64)
    grads = []
    for method in (EulerByBackprop(build_method(cfg).solver), DirectRK(build_method(cfg).solver)):
        task.model.zero_grad()
        task.check_loss(method).backward()
        grads.append(torch.cat([p.grad.flatten() for p in task.model.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)
