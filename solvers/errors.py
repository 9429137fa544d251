"""Typed failures of a solve, so a run's status comes from the exception's type, never from its text.

A solve can fail in two ways that are *results* of a run rather than bugs: the solver cannot go on (step size
underflow, the step budget spent: `SolverFailed`), or the state stops being finite (`StateDiverged`). The harness's
own stepping core raises these where they happen. torchdiffeq signals the same events with bare `AssertionError`s,
from inside the forward solve or from inside autograd's backward pass (the adjoint's backward solve), where no
method code is on the stack; `translated` is the one place that reads torchdiffeq's messages and turns them into
these types, and `runs` applies it once to whatever a training step raises.
"""

from __future__ import annotations


class SolveError(RuntimeError):
    """A differential-equation solve that cannot produce a result (the base of the typed failures)."""


class SolverFailed(SolveError):
    """The solver cannot go on: the step size underflowed, or more steps were needed than allowed."""


class StateDiverged(SolveError):
    """The solution stopped being finite (NaN or infinity in the state)."""


# What torchdiffeq (torchdiffeq/_impl/rk_common.py, 0.2.x) asserts, and the type each assertion means.
_TORCHDIFFEQ_ASSERTIONS = (
    ("underflow in dt", SolverFailed),
    ("max_num_steps exceeded", SolverFailed),
    ("non-finite values in state", StateDiverged),
)


def translated(exc: BaseException) -> BaseException:
    """`exc` as a typed `SolveError` when it is one of torchdiffeq's failure assertions; otherwise `exc` itself."""
    if isinstance(exc, AssertionError):
        message = str(exc)
        for text, kind in _TORCHDIFFEQ_ASSERTIONS:
            if text in message:
                error = kind(message.splitlines()[0])
                error.__cause__ = exc
                return error
    return exc
