"""One daemon per database: an advisory lock on a file beside it, or in PostgreSQL.

flock() is released by the kernel when the process dies, so a crashed or
SIGKILLed daemon never leaves a stale lock behind. A PostgreSQL database has
no file beside it and may be shared by machines: its daemon holds a
session-level advisory lock of the server instead (released by the server when
the daemon's connection ends), and records its pid and host in `meta`, so a
CLI on the same machine can still signal it (`daemon_lock` picks the kind).

The lock file also carries the daemon's storage problem, if any ("database or
disk is full"): the one place the daemon can still say so when the database
itself cannot take a write. The file is written once at its full size and
later only overwritten in place, which needs no new disk space.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config.paths import DatabaseURL
from monitor.errors import DatabaseLocked, MonitorError
from monitor.masking import mask_url
from monitor.store.postgres import connect, is_postgres_url, url_of
from monitor.store.values import to_text

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

    def __enter__(self) -> DaemonLock:
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


DAEMON_LOCK = 0x6D6F6E64  # "mond": the advisory lock of `monitor run` on a PostgreSQL database
WORKERS_FRESH = timedelta(seconds=30)  # a worker with a heartbeat this recent is alive


class PostgresDaemonLock:
    """`DaemonLock` for a PostgreSQL database: a session advisory lock held on a
    connection of its own for the daemon's life; its holder's pid and host in `meta`.
    A storage problem is not noted here: the server that refuses the writes would
    refuse this note too; the daemon's log says it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Any = None

    def acquire(self) -> None:
        db = connect(self.url)
        if not db.execute("SELECT pg_try_advisory_lock(?)", [DAEMON_LOCK]).fetchone()[0]:
            db.close()
            raise DatabaseLocked(f"another monitor daemon ({self._holder() or 'elsewhere'}) is already using "
                                 f"{mask_url(self.url)}; stop it first, or point this one at another database "
                                 "with --db")
        from monitor.store import postgres_schema

        postgres_schema.apply(db)
        workers = db.execute("SELECT count(*) FROM nodes WHERE kind = 'worker' AND heartbeat >= ?",
                             [to_text(datetime.now(UTC) - WORKERS_FRESH)]).fetchone()[0]
        if workers:
            db.close()
            raise DatabaseLocked(f"{workers} monitor worker(s) poll {mask_url(self.url)}: a `monitor run` "
                                 "daemon beside them would poll the same feeds; use workers or one daemon")
        db.execute("INSERT INTO meta (key, value) VALUES ('daemon_holder', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [f"{os.getpid()}@{socket.gethostname()}"])
        self._db = db

    def release(self) -> None:
        if self._db is not None:
            self._db.close()  # the server releases the lock with the session
            self._db = None

    def note_problem(self, problem: str | None, feeds: dict[str, str] | None = None) -> None:
        return None

    def feed_problems(self) -> dict[str, str]:
        return {}

    def problem(self) -> str | None:
        return None

    def held_by_other(self) -> bool:
        """True when some session of the server holds the daemon's lock."""
        try:
            db = connect(self.url)
        except MonitorError:
            return False
        try:
            return bool(db.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((classid::bigint << 32) | objid::bigint) = ?)", [DAEMON_LOCK]).fetchone()[0])
        finally:
            db.close()

    def holder_pid(self) -> int | None:
        """The daemon's pid when it runs on this machine (only then can it be signalled)."""
        if not self.held_by_other():
            return None
        pid, _, host = (self._holder() or "").partition("@")
        return int(pid) if pid.isdigit() and host == socket.gethostname() else None

    def _holder(self) -> str | None:
        try:
            db = connect(self.url)
        except MonitorError:
            return None
        try:
            if db.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
                return None
            row = db.execute("SELECT value FROM meta WHERE key = 'daemon_holder'").fetchone()
            return row[0] if row else None
        finally:
            db.close()

    def __enter__(self) -> PostgresDaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_lock(location: Path | str | DatabaseURL) -> DaemonLock | PostgresDaemonLock:
    """The lock of the daemon using the database at LOCATION (a SQLite file or a PostgreSQL URL)."""
    return PostgresDaemonLock(url_of(location)) if is_postgres_url(location) else DaemonLock(Path(location))


def signal_daemon(db_path: Path | str | DatabaseURL, sig: int = signal.SIGHUP) -> int | None:
    """Send SIG to the daemon using this database (a reload, by default); its pid, or None."""
    pid = daemon_lock(db_path).holder_pid()
    if pid is None:
        return None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    return pid
