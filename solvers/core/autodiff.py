"""Local vector-Jacobian products and in-place gradient sums, for the backward passes that step themselves.

The memory-bounded methods (reversible, checkpoint, MALI) walk back one step at a time and take one or two local
VJPs per step; on small fields the Python around each VJP costs as much as the VJP, so `vjp` calls autograd's engine
directly and `accumulate` sums the parameter gradients with one fused call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

try:  # what torch.autograd.grad calls once it has checked its arguments
    from torch.autograd.graph import _engine_run_backward
except ImportError:  # pragma: no cover - another torch version
    _engine_run_backward = None


def vjp(outputs: torch.Tensor | Sequence[torch.Tensor], inputs: tuple[torch.Tensor, ...],
        cotangents: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor | None, ...]:
    """The vector-Jacobian products sum_k cotangents[k]^T d outputs[k] / d input for each of `inputs` (None for an
    input no output reaches), as torch.autograd.grad(..., allow_unused=True) computes them, but calling autograd's
    engine directly: grad's Python-side argument handling costs about 8 us a call, a tenth of one local VJP through a
    midpoint step of a small MLP field. `outputs` and `cotangents` are one tensor each or matching sequences."""
    if isinstance(outputs, torch.Tensor):
        outputs, cotangents = (outputs,), (cotangents,)
    if _engine_run_backward is None:  # pragma: no cover
        return torch.autograd.grad(tuple(outputs), inputs, grad_outputs=tuple(cotangents), allow_unused=True)
    return _engine_run_backward(tuple(outputs), tuple(cotangents), False, False, inputs, True, False)


def accumulate(total: list[torch.Tensor], new: Sequence[torch.Tensor | None], subtract: bool = False) -> None:
    """total[i] += new[i] (-= with `subtract`) in place, skipping None; one fused call when nothing is None."""
    if total and not any(g is None for g in new):
        (torch._foreach_sub_ if subtract else torch._foreach_add_)(total, new)
        return
    for acc, g in zip(total, new):
        if g is not None:
            if subtract:
                acc.sub_(g)
            else:
                acc.add_(g)
