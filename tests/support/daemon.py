"""`monitor run` as a real subprocess, with helpers to wait on what it writes."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path


def wait_until(predicate, timeout: float, every: float = 0.1) -> bool:
    """Poll a condition the daemon makes true (a row, a message); no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def db_rows(db: Path, sql: str, *args) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


class DaemonProcess:
    """Starts `monitor run ARGS` with the given environment; collects stderr lines."""

    COMMAND = "run"

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def start(self) -> DaemonProcess:
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", self.COMMAND, *self.args],
                                     env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class WorkerProcess(DaemonProcess):
    """Starts `monitor worker ARGS`: one worker of a cluster on a PostgreSQL database."""

    COMMAND = "worker"


class NotifySocket:
    """A real AF_UNIX datagram socket to pass as NOTIFY_SOCKET; records every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            self.messages.append(data.decode("utf-8"))

    def count(self, field: str) -> int:
        return sum(1 for m in list(self.messages) if field in m.split("\n"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        os.unlink(self.path)
