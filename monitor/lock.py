"""One daemon per database: an advisory lock on a file beside it.

flock() is released by the kernel when the process dies, so a crashed or
SIGKILLed daemon never leaves a stale lock behind.

The lock file also carries the daemon's storage problem, if any ("database or
disk is full"): the one place the daemon can still say so when the database
itself cannot take a write. The file is written once at its full size and
later only overwritten in place, which needs no new disk space.
"""

from __future__ import annotations

import fcntl
import os
import signal
from pathlib import Path

from monitor.errors import DatabaseLocked, MonitorError


LOCK_FILE_SIZE = 1024  # bytes: within the first block, so rewriting it never allocates


class DaemonLock:
    """Exclusive, non-blocking lock on `<db>.lock` holding the owner's pid
    (first line) and its storage problem, if any (second line)."""

    def __init__(self, db_path: Path) -> None:
        # The real path: a symlink (or another spelling) of the same database must
        # name the same lock, or two daemons would write one database.
        real = Path(db_path).expanduser().resolve()
        self.path = real.with_name(real.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise MonitorError(f"cannot create the lock file {self.path}: "
                               f"{exc.strerror or exc} (the daemon needs to write in "
                               f"{self.path.parent})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").split("\n")[0].strip() or "another process"
            os.close(fd)
            raise DatabaseLocked(
                f"another monitor daemon (pid {holder}) is already using {self.path.with_suffix('')}; "
                "stop it first, or point this one at another database with --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, _content(None))
        self._fd = fd

    def note_problem(self, problem: str | None, feeds: dict[str, str] | None = None) -> None:
        """Say (or, with None, clear) what keeps the daemon from writing its database,
        and which feeds' polls could not be stored (name -> why), one per line after it."""
        if self._fd is None:
            return
        try:
            os.pwrite(self._fd, _content(problem, feeds), 0)
        except OSError:
            pass  # a filesystem that cannot even overwrite in place: the log still says it

    def feed_problems(self) -> dict[str, str]:
        """The running daemon's feeds whose polls could not be stored, with why."""
        if not self.held_by_other():
            return {}
        try:
            lines = self._lines()
        except OSError:
            return {}
        found = {}
        for line in lines[2:]:
            name, tab, problem = line.partition("\t")
            if tab and name:
                found[name] = problem
        return found

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
            return int(self._lines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def problem(self) -> str | None:
        """The running daemon's storage problem, or None (also when no daemon runs)."""
        if not self.held_by_other():
            return None
        try:
            lines = self._lines()
        except OSError:
            return None
        return lines[1] if len(lines) > 1 and lines[1] else None

    def _lines(self) -> list[str]:
        return [line.strip(" ") for line in
                self.path.read_bytes().decode("utf-8", errors="ignore").split("\n")]

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


def _content(problem: str | None, feeds: dict[str, str] | None = None) -> bytes:
    """The lock file's bytes, always LOCK_FILE_SIZE long (padded with spaces): the pid, the
    problem, then `name<TAB>why` per failing feed, as many as fit (whole lines only)."""
    line = " ".join((problem or "").split())  # one line
    data = f"{os.getpid()}\n{line}".encode()[:LOCK_FILE_SIZE - 1]
    for name, why in (feeds or {}).items():
        more = ("\n" + " ".join(name.split()) + "\t" + " ".join(why.split())[:120]).encode()
        if len(data) + len(more) > LOCK_FILE_SIZE - 1:
            break
        data += more
    return data.ljust(LOCK_FILE_SIZE, b" ")


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
