"""Direct backprop through the harness's own Runge–Kutta stepping loop ("discretise-then-optimise").

The same discrete solve as `reversible`'s base scheme and `checkpoint` (same tableau, same grid: each interval
between output times cut into equal steps, outputs without interpolation), differentiated by autograd, which keeps
every stage of every step: memory grows with the number of steps. It exists for the schemes torchdiffeq lacks
(ralston3, tsit5, classic rk4 — torchdiffeq's `rk4` is the 3/8 rule — and fixed-step dopri5/bosh3) and as the
reference the memory-bounded methods are checked against. No backward NFE. With `method.compile=true` each step is one
compiled function under autograd (solvers/core/compiled.py).
"""

from __future__ import annotations

import torch

from solvers.base import SteppingMethod
from solvers.core import PlainStepper, Schedule


class DirectRK(SteppingMethod):
    name = "direct_rk"

    def _run(self, stepper: PlainStepper, schedule: Schedule, y0: torch.Tensor) -> torch.Tensor:
        return torch.stack(stepper.run(schedule, y0)[0])
