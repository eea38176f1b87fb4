"""What the chaos and crash runs share: a config folder, the daemon as a real process,
a mail sink that counts alerts per story, a recording proxy, and a process-tree RSS meter.

Everything listens on loopback and everything the daemon writes stays in one
work folder, so a run can be repeated and thrown away.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.chaos.hostile import CREDENTIAL_HEADER

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"\(ref ([\w.-]+)\)")
# Alerts per second one email destination manages: apprise waits 5.5 s between two sends
# of one plugin object, and the dispatcher runs 4 sends per destination at once.
SEND_RATE = 0.7

WATCH = """
[rule.chaos_marker]
description = "Stories the reliability runs expect an alert for"
query = 'zeppelin'
severity = "warning"

[rule.chaos_proximity]
description = "The matching bomb's words, near each other (hostile case matching_bomb)"
query = 'airship NEAR/3 hangar'
"""


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Poll a condition the daemon makes true; False if it is still false after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# config folder and environment
# --------------------------------------------------------------------------


@dataclass
class Workspace:
    """A config folder, a database path and the environment `monitor` runs with."""

    folder: Path
    db: Path | None = None
    proxy: str | None = None  # HTTP(S)_PROXY/ALL_PROXY for the daemon, None = unset

    def __post_init__(self) -> None:
        self.config = self.folder / "cfg"
        self.db = self.db or self.folder / "state" / "monitor.db"

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.upper().startswith(("MONITOR_", "XDG_", "HTTP_PROXY", "HTTPS_PROXY",
                                             "ALL_PROXY", "NO_PROXY"))}
        base.update(HOME=str(self.folder), MONITOR_CONFIG=str(self.config),
                    MONITOR_DB=str(self.db), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        if self.proxy:
            # httpx reads NO_PROXY entries as hosts: the CIDR 127.0.0.0/8 alone is not honoured
            # (it would send loopback feeds to the proxy), so every address used is listed too.
            loopback = ",".join(f"127.0.0.{n}" for n in range(1, 10))
            base.update(HTTP_PROXY=self.proxy, HTTPS_PROXY=self.proxy, ALL_PROXY=self.proxy,
                        NO_PROXY=f"127.0.0.0/8,{loopback},localhost")
        return base

    def write(self, feeds: Sequence[tuple[str, str]], *, interval: str, smtp_url: str,
              fetch: dict[str, object], alert_settings: dict[str, object],
              poll: dict[str, object] | None = None) -> None:
        """monitor.toml, feeds.toml, watch.toml and alerts.toml for FEEDS [(name, url)]."""
        if not self.config.exists():
            monitor("init", str(self.config), "--no-feeds", env=self.env, check=True)
        poll = {"interval": interval, "jitter": 0.1, "max_backoff": "1s", **(poll or {})}
        (self.config / "monitor.toml").write_text(
            'log_level = "info"\n' + _table("fetch", fetch) + _table("poll", poll), encoding="utf-8")
        # Each feed sends a credential header naming its own host (see CREDENTIAL_HEADER).
        (self.config / "feeds.toml").write_text("".join(
            f'[[feed]]\nname = "{name}"\nurl = "{url}"\ninterval = "{interval}"\nlanguage = "en"\n'
            f'headers = {{ {CREDENTIAL_HEADER} = "{urlsplit(url).hostname}" }}\n\n'
            for name, url in feeds), encoding="utf-8")
        (self.config / "watch.toml").write_text(WATCH, encoding="utf-8")
        (self.config / "alerts.toml").write_text(
            _table("settings", alert_settings)
            + f'[[destination]]\nname = "desk"\nurl = "{smtp_url}"\n', encoding="utf-8")


def _table(name: str, values: dict[str, object]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def monitor(*args: str, env: dict[str, str], check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """One `monitor` CLI command as a subprocess."""
    result = subprocess.run([sys.executable, "-m", "monitor", *args], env=env, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"monitor {' '.join(args)}: exit {result.returncode}\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def feeds_list(env: dict[str, str]) -> dict[str, dict]:
    """`monitor feeds list --json`, by feed name."""
    result = monitor("feeds", "list", "--json", env=env, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {row["name"]: row for row in rows}


def db_rows(db: Path, sql: str, *args: object) -> list[tuple]:
    """Rows from a read-only connection (WAL lets it read while the daemon writes)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def integrity(db: Path) -> str:
    with sqlite3.connect(db, timeout=30) as conn:
        return ", ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------


class Daemon:
    """`monitor run` as a real process; its log goes to a file, read back line by line."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._offset = 0  # where this start's lines begin in the log file

    def start(self) -> Daemon:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "run"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lines(self, since_start: bool = True) -> list[str]:
        if not self.log.exists():
            return []
        with open(self.log, "rb") as log:
            log.seek(self._offset if since_start else 0)
            return log.read().decode("utf-8", "replace").splitlines()

    def wait_for_line(self, needle: str, timeout: float) -> bool:
        return wait_until(lambda: any(needle in line for line in self.lines()) or not self.alive(),
                          timeout) and self.alive()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; the exit code (-9 if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a power cut or the OOM killer."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def processes_using(db: Path) -> list[int]:
    """Live processes started with MONITOR_DB=DB: a daemon and every process it spawned."""
    marker = f"MONITOR_DB={db}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if marker not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------
# the mail sink
# --------------------------------------------------------------------------


@dataclass
class Mail:
    subject: str
    text: str
    html: str
    ref: str | None


class MailSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that counts alerts per story ref.

    `delay` holds each DATA reply a little, so sends take time as on a real
    server and a kill is likely to land while one is in flight.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.port = free_port()
        self.delay = delay
        self.mails: list[Mail] = []
        self.arrived = threading.Condition()
        self._controller = None

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=monitor@example.org&to=desk@example.org"

    def start(self) -> MailSink:
        import asyncio

        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                if sink.delay:
                    await asyncio.sleep(sink.delay)
                sink._record(envelope.content)
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _record(self, raw: bytes) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {part.get_content_type(): part.get_content() for part in message.walk()
                 if not part.is_multipart()}
        subject = str(message["subject"] or "")
        found = REF.search(subject)
        mail = Mail(subject, parts.get("text/plain", ""), parts.get("text/html", ""),
                    found.group(1) if found else None)
        with self.arrived:
            self.mails.append(mail)
            self.arrived.notify_all()

    def counts(self) -> Counter:
        with self.arrived:
            return Counter(mail.ref for mail in self.mails if mail.ref)

    def wait_for_refs(self, refs: set[str], timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(
                lambda: refs <= {mail.ref for mail in self.mails}, timeout)


# --------------------------------------------------------------------------
# the recording proxy
# --------------------------------------------------------------------------


@dataclass
class RecordingProxy:
    """Where HTTP(S)_PROXY points: any request that would leave loopback lands here.

    It records the request line (or CONNECT target) and answers 502, so a
    leaking fetch fails instead of reaching anything.
    """

    seen: list[str] = field(default_factory=list)  # request lines (or CONNECT targets)
    empty: int = 0  # connections closed before sending a byte: nothing was asked for

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def _run(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b""
                if not first:
                    self.empty += 1
                    continue
                self.seen.append(first.decode("latin-1"))
                try:
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@dataclass
class Check:
    """One verdict of a run: what was checked, whether it held, and the figures behind it."""

    name: str
    ok: bool
    detail: str


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain-text table for the run reports."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
