"""Run the `monitor` command on a real pseudo-terminal, as a person at a terminal would.

Piped output differs from a terminal's (click strips ESC[ sequences, commands
drop colour and tables), so what reaches a terminal is tested here: the child
gets the pty as its controlling terminal, stdin, stdout and stderr, and a
window of the given size.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass


@dataclass
class TerminalRun:
    output: bytes  # everything the terminal received (stdout and stderr, as a person sees it)
    returncode: int

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


class Terminal:
    """`monitor ARGS` on a pty of COLUMNS x ROWS; `expect` text, `send` keystrokes."""

    def __init__(self, *args: str, env: dict[str, str], columns: int = 100, rows: int = 40) -> None:
        env = {**env, "COLUMNS": str(columns), "LINES": str(rows), "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        pid, fd = pty.fork()
        if pid == 0:  # the child: size its terminal, then become the CLI
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
                os.execvpe(sys.executable, [sys.executable, "-m", "monitor", *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk
        return True

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{text!r} did not appear; the terminal shows:\n{self.output!r}")

    def wait_for_hidden_input(self, timeout: float = 30) -> None:
        """Wait until the program has switched the terminal's echo off: a prompt for a
        secret is printed before the echo goes off, so typing at once would be echoed."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ECHO:
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal's echo stayed on; it shows:\n{self.output!r}")
            self._read(0.05)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60) -> TerminalRun:
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                break
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return TerminalRun(self.output, os.waitstatus_to_exitcode(status))


def run_in_terminal(*args: str, env: dict[str, str], columns: int = 100, timeout: float = 60) -> TerminalRun:
    """`monitor ARGS` on a terminal COLUMNS wide, to the end."""
    return Terminal(*args, env=env, columns=columns).wait(timeout)
