"""One process per run directory: an operating-system file lock held for the run's whole life.

Two processes on the same run directory (a sweep launched twice, a job requeued while its first attempt still runs)
would both append every step to metrics.jsonl and both write result.json. `RunLock` takes an exclusive `flock` on
`<run dir>/.lock` and writes its PID there; the kernel releases the lock when the process ends, however it ends
(SIGKILL included), so a lock is never stale. A second process gets `RunLocked` at once, naming the holder's PID;
`holder` lets a reader (analysis.status) see that a run is in progress without disturbing it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from record.files import LOCK


class RunLocked(RuntimeError):
    """Another process holds the run directory."""


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(50):  # a reader's brief shared lock (`holder`) is waited out; a run's is not
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = holder(self.path.parent)
                if pid is not None:
                    os.close(fd)
                    who = f"PID {pid}" if pid > 0 else "PID not yet written"
                    raise RunLocked(f"{self.path.parent} is in use by another process ({who}); wait for it to "
                                    "finish, or stop it, then run the same command again") from None
                time.sleep(0.01)
        else:
            os.close(fd)
            raise RunLocked(f"{self.path.parent} is locked ({self.path}) and the holder cannot be read")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(run_dir: Path) -> int | None:
    """The PID of the process that holds the run directory's lock, or None when no process holds it."""
    path = Path(run_dir) / LOCK
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
