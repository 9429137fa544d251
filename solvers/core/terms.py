"""Terms and the Runge–Kutta increment: one stage's increment of an ODE or SDE, and one base step of a tableau.

- A *term* turns (t, y, dt, dW) into the increment of one stage: `dt * f(t, y)` for an ODE (CDEs too: their field
  already multiplies by dX/dt), `f(t, y) dt + g(t, y) dW` for a Stratonovich SDE. Writing a stage as an increment
  lets one base step serve ODEs and SDEs, forwards (dt > 0) and backwards (dt < 0, dW -> -dW).
- `rk_increment` is the base step Psi_h(t, y) = sum_i b_i K_i of a tableau, added with a scale onto a base tensor
  (y + Psi, z - Psi, ...) in the same weighted sum (and, when asked, its error estimate).
- Per-step cost matters: on small fields every tensor operation costs about as much as the arithmetic, so the
  increment fuses weights into `torch.add(alpha=)` and skips zero tableau entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from solvers.tableaus import Tableau

Term = Callable[[torch.Tensor, torch.Tensor, float, "torch.Tensor | None"], torch.Tensor]


class ODETerm:
    """dt * f(t, y): one stage's increment of an ODE (or of a CDE whose field multiplies by dX/dt itself)."""

    def __init__(self, field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.field = field

    def __call__(self, t: torch.Tensor, y: torch.Tensor, dt: float, dw: torch.Tensor | None = None) -> torch.Tensor:
        return self.field(t, y) * dt


class SDETerm:
    """f(t, y) dt + g(t, y) dW for a torchsde SDE (`f_and_g`, `noise_type`); Stratonovich when the scheme is."""

    def __init__(self, sde: Any) -> None:
        self.sde = sde
        self.diagonal = sde.noise_type == "diagonal"

    def __call__(self, t: torch.Tensor, y: torch.Tensor, dt: float, dw: torch.Tensor | None = None) -> torch.Tensor:
        f, g = self.sde.f_and_g(t, y)
        noise = g * dw if self.diagonal else (g @ dw.unsqueeze(-1)).squeeze(-1)
        return f * dt + noise


def brownian_increment(bm: Any, t0: float, t1: float) -> torch.Tensor | None:
    """W(t1) - W(t0) from a torchsde Brownian object (None for ODEs), either direction."""
    if bm is None:
        return None
    return bm(t0, t1) if t1 > t0 else -bm(t1, t0)


def _weighted_sum(base: torch.Tensor | None, pairs: Sequence[tuple[int, float]], ks: Sequence[torch.Tensor],
                  scale: float) -> torch.Tensor | None:
    """base + sum_j (w_j * scale) ks[j] over the nonzero (j, w_j) in `pairs` (None when nothing is added and base is
    None). Each term is one torch.add with the weight as its `alpha`, so no separate multiplication is needed."""
    out = base
    if isinstance(scale, torch.Tensor):  # a step size held as a tensor (the compiled core): no `alpha`
        for j, w in pairs:
            term = ks[j] * (scale * w)
            out = term if out is None else out + term
        return out
    for j, w in pairs:
        w = w * scale
        if out is None:
            out = ks[j] if w == 1 else ks[j] * w
        else:
            out = torch.add(out, ks[j], alpha=w)
    return out


def rk_increment(term: Term, tableau: Tableau, t: torch.Tensor, dt: float, y: torch.Tensor,
                 dw: torch.Tensor | None = None, error: bool = False, base: torch.Tensor | None = None,
                 scale: float = 1.0):
    """base + scale * Psi_dt(t, y), where Psi = sum_i b_i K_i is one base step's increment (base=y: the step y + Psi;
    base None: Psi itself). Folding base and scale into the weighted sum of the stages saves the separate "form Psi,
    then add it" operations: on small fields every tensor operation (and autograd node) costs about as much as the
    arithmetic. With `error`, also the local error estimate sum_i (b_i - b_embedded_i) K_i (every stage is evaluated;
    neither base nor scale applies to it); without it, trailing zero-weight stages are skipped. Returns the result, or
    (result, error estimate). For an ODE the stages are the field's values and dt goes into the weights."""
    stages = tableau.stages if error else tableau.advance_stages
    ode = isinstance(term, ODETerm)  # dt may be a 0-d tensor (the compiled core's steps), then every weight is one
    w = dt if ode else 1.0
    field, rows, c = term.field if ode else None, tableau.nonzero, tableau.c
    ks: list[torch.Tensor] = []
    for i in range(stages):
        yi = _weighted_sum(y, rows[i], ks, w) if i else y
        ti = t + c[i] * dt if c[i] else t
        ks.append(field(ti, yi) if ode else term(ti, yi, dt, dw))
    out = _weighted_sum(base, tableau.nonzero_b, ks, w * scale)
    if not error:
        return out
    return out, _weighted_sum(None, tableau.nonzero_error, ks, w)
