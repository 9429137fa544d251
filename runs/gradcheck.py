"""A run's gradient error: its method's gradient against a float64 reference on the task's fixed check batch.

Both gradients are taken in float64 at the run's trained parameters, so the error measures the method and its
tolerances, not float32 round-off. The reference is direct backprop with tight tolerances (`grad_check.*`):
the gradient of the continuous problem, to within those tolerances.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from runs.build import build_method, build_task
from solvers.base import SolverSpec
from solvers.direct import DirectBackprop
from solvers.direct_rk import DirectRK
from tasks.base import Solver, Task


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (L2 over every element): a gradient's error against its reference `b`."""
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


def _gradient(task: Task, solver: Solver) -> torch.Tensor | None:
    task.model.zero_grad(set_to_none=True)
    loss = task.check_loss(solver)
    if loss is None:
        return None
    params = [p for p in task.model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


def gradient_error(cfg: DictConfig, trained: Task) -> float | None:
    """Relative L2 error ||g - g_ref|| / ||g_ref||, or None where the task has no check loss."""
    return gradient_errors(cfg, trained)["grad_rel_error"]


def reference_method(cfg: DictConfig):
    """Direct backprop with `grad_check.*`: tight tolerances by default; with `grad_check.step_size`, fixed steps of
    that size (e.g. the same discrete solve a fixed-step method takes: the reversible paper's error against
    discretise-then-optimise), through the harness's own RK loop where torchdiffeq lacks the scheme."""
    check = cfg.grad_check
    spec = SolverSpec(name=check.solver, rtol=check.rtol, atol=check.atol, step_size=check.get("step_size"))
    if spec.torchdiffeq:
        return DirectBackprop(spec)
    return DirectRK(spec)


def gradient_errors(cfg: DictConfig, trained: Task) -> dict[str, float | None]:
    """grad_rel_error = ||g - g_ref|| / ||g_ref|| (L2 over all parameters) and grad_abs_error_sum = sum |g - g_ref|
    (the reversible paper's measure), both None where the task has no check loss."""
    task = build_task(cfg, trained.device, torch.float64)
    task.model.load_state_dict(trained.model.state_dict())
    grad = _gradient(task, build_method(cfg))
    if grad is None:
        return {"grad_rel_error": None, "grad_abs_error_sum": None}
    ref = _gradient(task, reference_method(cfg))
    return {"grad_rel_error": relative_error(grad, ref),
            "grad_abs_error_sum": (grad - ref).abs().sum().item()}
