"""What makes a run survive a cluster: stop signals honoured at step boundaries, and a config fingerprint that a
checkpoint or a finished result must match before it is reused.

Schedulers warn a job before they stop it. SLURM sends SIGTERM (then SIGKILL after KillWait / GraceTime) when it
cancels or pre-empts a job; submitit asks SLURM for SIGUSR2 `signal_delay_s` before the time limit
(`--signal=USR2@...`; older submitit used SIGUSR1) and installs a handler for it that requeues the job. Saving a
checkpoint inside a signal handler could catch the model half-way through an optimiser step, so our handler only
notes the signal; the training loop calls `StopSignals.check` after each step, which saves a checkpoint there and
then hands over to whatever handled the signal before (submitit: requeue the job and exit), or, in a plain process,
raises `Interrupted` (the entry point prints one line and exits with 128 + the signal number).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Interrupted(BaseException):
    """A stop signal was honoured at a step boundary, after saving a checkpoint. A BaseException, like
    KeyboardInterrupt, so the loop's `except Exception` does not record it as a failed run."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum, self.step = signum, step
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} after step {step}; checkpoint saved")


class StopSignals:
    """Context manager: while active, SIGTERM / SIGUSR1 / SIGUSR2 only set a flag, which `check` acts on."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _note(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = signum
            log.warning("received %s: stopping after this step (send it again to stop at once)", name)
            return
        # A second signal: a step that never ends (a stuck solver) must not make the process unkillable.
        log.warning("received %s again: stopping now, without a checkpoint", name)
        previous = self._previous.get(signum, signal.SIG_DFL)
        self.__exit__()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def check(self, save: Callable[[], None], step: int) -> None:
        """At a step boundary: if a stop signal came, save, then let the previous handler act or raise Interrupted."""
        if self.received is None:
            return
        signum = self.received
        save()
        log.warning("checkpoint saved after step %d (%s)", step, signal.Signals(signum).name)
        previous = self._previous.get(signum)
        self.__exit__()
        if callable(previous):  # e.g. submitit's: requeue the job, then sys.exit; its SIGTERM handler only logs
            previous(signum, None)
        raise Interrupted(signum, step)
