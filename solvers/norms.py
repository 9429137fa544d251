"""Error norms for the backward (adjoint) solve: each one small function, defined exactly, in this one place.

A step of an adaptive solver is accepted when the norm of its error ratio (error / tolerance, per element) is
at most 1, so which channels a norm looks at decides how many steps the backward solve takes. torchdiffeq hands
an adjoint norm the augmented state as the tuple

    (a_t, y, a_y, *a_theta)   - time adjoint, state, state adjoint, one tensor per parameter adjoint

(our methods always give torchdiffeq a single state tensor, so `y` and `a_y` are one tensor each).

- `default`:       torchdiffeq 0.2.x's default, what a user gets without asking:
                   max(|a_t|, RMS(y), RMS(a_y), RMS(p) for every parameter tensor p separately).
- `paper_default`: the default of torchdiffeq 0.1.x, which the seminorm paper's code ran on and compared against:
                   max(|a_t|, RMS(y), RMS(a_y), RMS(all of a_theta as one vector)).
- `seminorm`:      the seminorm paper's norm: max(RMS(y), RMS(a_y)); no time channel, no parameter channels.
                   (torchdiffeq's built-in norm="seminorm" differs: it keeps |a_t|.)
- `rms`:           one RMS over the whole augmented state.
- `authors_acrobot`: NOT a seminorm: the norm the seminorm paper's acrobot experiment actually ran with. Its code
                   (FasterNeuralDiffEq models/symode.py) builds `make_norm(x)` from the whole observed window x
                   (batch x len(ts) x channels) instead of the ODE state x[:, 0], so the slices it cuts from the flat
                   augmented state [a_t | y | a_y | a_theta] are len(ts) times too long: max(RMS(flat[1 : 1 + S]),
                   RMS(flat[1 + S : 1 + 2S])) with S = len(ts) * y.numel(). The first slice holds y, a_y and the first
                   parameter adjoints, the second more parameter adjoints; as y dominates the value is about
                   RMS(y) / sqrt(len(ts)), which acts like the default norm with tolerances sqrt(len(ts)) times looser.
                   It needs the solve's number of observation times (`get_norm(name, times=len(ts))`), so only a
                   method that passes them (method=adjoint) can use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch

Norm = Callable[[Sequence[torch.Tensor]], torch.Tensor]


def _rms(x: torch.Tensor) -> torch.Tensor:
    """torchdiffeq's own arithmetic (abs, square, mean, sqrt), so that `default` makes bit-for-bit the step
    decisions torchdiffeq's built-in default makes. (A fused torch._foreach_norm is 4x faster but rounds
    differently, which flips the odd accept/reject decision and changes NFE.)"""
    return x.abs().pow(2).mean().sqrt()


def _rms_joint(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """RMS of several tensors taken as one vector (without concatenating them)."""
    total = sum(t.abs().pow(2).sum() for t in tensors)
    return (total / sum(t.numel() for t in tensors)).sqrt()


def _max(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([v.reshape(()) for v in values]).max()


def default(aug: Sequence[torch.Tensor]) -> torch.Tensor:
    a_t, y, a_y, *a_theta = aug
    return _max([a_t.abs(), _rms(y), _rms(a_y), *(_rms(p) for p in a_theta)])


def paper_default(aug: Sequence[torch.Tensor]) -> torch.Tensor:
    a_t, y, a_y, *a_theta = aug
    channels = [a_t.abs(), _rms(y), _rms(a_y)]
    if a_theta:
        channels.append(_rms_joint(a_theta))
    return _max(channels)


def seminorm(aug: Sequence[torch.Tensor]) -> torch.Tensor:
    _, y, a_y, *_ = aug
    return _max([_rms(y), _rms(a_y)])


def rms(aug: Sequence[torch.Tensor]) -> torch.Tensor:
    return _rms_joint(list(aug))


def authors_acrobot(aug: Sequence[torch.Tensor], times: int) -> torch.Tensor:
    """The acrobot experiment's as-run norm (see the module docstring): slices of len(ts) x the state size."""
    _, y, *_ = aug
    flat = torch.cat([t.reshape(-1) for t in aug])  # torchdiffeq 0.1's flat augmented state, parameters in order
    size = times * y.numel()
    first, second = _rms(flat[1:1 + size]), _rms(flat[1 + size:1 + 2 * size])
    # Python's max(first, second), as their make_norm takes it: where the state is so long that the second slice is
    # empty (its RMS NaN), the first slice's RMS.
    return torch.where(second > first, second, first)


def _needs_times(aug: Sequence[torch.Tensor]) -> torch.Tensor:
    raise ValueError("norm=authors_acrobot sizes its slices by the solve's number of observation times, which only "
                     "method=adjoint passes to it; use method=adjoint")


NORMS: dict[str, Norm] = {
    "default": default,
    "paper_default": paper_default,
    "seminorm": seminorm,
    "rms": rms,
    "authors_acrobot": _needs_times,  # get_norm(..., times=len(ts)) gives the real one
}
# Norms whose value depends on the solve (its number of observation times), built per solve by `get_norm`.
_PER_SOLVE = {"authors_acrobot": authors_acrobot}


def get_norm(name: str, times: int | None = None) -> Norm:
    """The norm `name`; `times` (the solve's len(ts)) is what a per-solve norm (authors_acrobot) is sized by."""
    if name in _PER_SOLVE and times is not None:
        return functools.partial(_PER_SOLVE[name], times=times)
    try:
        return NORMS[name]
    except KeyError:
        raise ValueError(f"norm={name!r} is not a norm; choose one of {', '.join(NORMS)}") from None
