"""Direct backpropagation through the solver's operations ("discretise-then-optimise").

Exact gradient of the discrete forward solve; memory grows with the number of steps, since autograd keeps every
stage of every step (rejected steps of an adaptive solver included). No backward NFE: autograd replays the
recorded graph and never calls the field again.
"""

from __future__ import annotations

import torch
import torchdiffeq
from torch import nn

from solvers.base import GradientMethod


class DirectBackprop(GradientMethod):
    name = "direct"
    supports_jump_t = True

    def _solve(self, field: nn.Module, y0: torch.Tensor, ts: torch.Tensor,
               jump_t: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = self.solver.odeint_kwargs()
        if jump_t is not None:
            kwargs["options"]["jump_t"] = jump_t
        return torchdiffeq.odeint(field, y0, ts, **kwargs)
