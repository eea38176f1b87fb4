"""One daemon per database: an advisory lock on a file beside it.

flock() is released by the kernel when the process dies, so a crashed or
SIGKILLed daemon never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import signal
from pathlib import Path

from monitor.errors import DatabaseLocked


class DaemonLock:
    """Exclusive, non-blocking lock on `<db>.lock` holding the owner's pid."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DatabaseLocked(
                f"another monitor daemon (pid {holder}) is already using {self.path.with_suffix('')}; "
                "stop it first, or point this one at another database with --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder_pid(self) -> int | None:
        """The pid of the daemon holding the lock, or None when no daemon runs."""
        if not self.held_by_other():
            return None
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def held_by_other(self) -> bool:
        """True when some other process holds the lock (used by status and CLI edits)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def __enter__(self) -> "DaemonLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def signal_daemon(db_path: Path, sig: int = signal.SIGHUP) -> int | None:
    """Send SIG to the daemon using this database (a reload, by default); its pid, or None."""
    pid = DaemonLock(db_path).holder_pid()
    if pid is None:
        return None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    return pid
