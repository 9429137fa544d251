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
from tasks.base import Solver, Task


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
    task = build_task(cfg, trained.device, torch.float64)
    task.model.load_state_dict(trained.model.state_dict())
    grad = _gradient(task, build_method(cfg))
    if grad is None:
        return None
    reference = DirectBackprop(
        SolverSpec(name=cfg.grad_check.solver, rtol=cfg.grad_check.rtol, atol=cfg.grad_check.atol)
    )
    ref = _gradient(task, reference)
    return (torch.linalg.vector_norm(grad - ref) / torch.linalg.vector_norm(ref)).item()
