"""systemd's readiness protocol (sd_notify), spoken directly on $NOTIFY_SOCKET.

Written here rather than taken from the `sdnotify` package, which swallows
send errors and cannot encode non-Latin STATUS= text. A notification is one
AF_UNIX datagram of newline-separated KEY=value lines in UTF-8; systemd
accepts a filesystem path or, with a leading '@', an abstract socket name.
Nothing here ever raises into the daemon: a lost notification must not stop
feeds from being polled, so failures are reported by the return value and
logged once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)

USEC_PER_SECOND = 1_000_000


def socket_address(value: str) -> bytes:
    """The kernel address for a NOTIFY_SOCKET value: '@name' is abstract (a leading NUL byte)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")
    return os.fsencode(value)


def encode_fields(fields: Mapping[str, str | int]) -> bytes:
    """KEY=value lines; a newline inside a value would start a bogus field, so it becomes a space."""
    lines = []
    for key, value in fields.items():
        text = str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode("utf-8")


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WATCHDOG_USEC in seconds, when it is meant for this process (see sd_watchdog_enabled(3))."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / USEC_PER_SECOND


class Notifier:
    """Sends notifications to the service manager; a silent no-op when not run by systemd."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        self.address = address
        self.enabled = bool(address)
        self._watchdog_seconds = watchdog_seconds if self.enabled else None
        self._socket: socket.socket | None = None
        self._failure_logged = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        return cls(env.get("NOTIFY_SOCKET") or None, _watchdog_seconds(env))

    def send(self, **fields: str | int) -> bool:
        """One datagram with FIELDS in the given order; True when the kernel accepted it."""
        if not self.address or not fields:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(encode_fields(fields), socket_address(self.address))
        except (OSError, ValueError) as error:
            self._log_failure(error)
            return False
        return True

    def _log_failure(self, error: Exception) -> None:
        """Once per notifier: a watchdog ping every few seconds must not flood the journal."""
        if not self._failure_logged:
            self._failure_logged = True
            logger.debug("event=sd_notify_failed socket=%s error=%r", self.address, str(error))

    def ready(self, status: str | None = None) -> bool:
        if status is None:
            return self.send(READY=1)
        return self.send(READY=1, STATUS=status)

    def reloading(self) -> bool:
        """RELOADING=1 with the CLOCK_MONOTONIC timestamp systemd uses to match the later READY=1."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects WATCHDOG=1 (ping at half that); None if unsupervised."""
        return self._watchdog_seconds

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
