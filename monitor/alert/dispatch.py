"""The dispatcher: sends due outbox rows through apprise and records each outcome.

Each destination is served by its own task, so a dead mail server never
delays a chat webhook. Immediate alerts go one message each; digest rows due
together go as one message. A send counts as delivered only on apprise's
SUCCESS; a TIMEOUT may have been delivered, so it is retried and flagged as
a possible duplicate. An alert is marked sent only after the send returned:
a crash in between repeats at most the alerts in flight, never loses one.
Alerts of a destination no longer configured are cancelled, not retried.

A failed send is explained by what apprise logged for that call: its warning
("Connection error while submitting email") and the cause it logs at debug
level ("SMTP AUTH extension not supported by server"). The call captures its
own records (apprise's `log_level`), so concurrent sends never mix them up;
for the debug records to exist at all the "apprise" logger is set to DEBUG,
and only its WARNING and above still reach the process's log handlers.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence
from urllib.parse import unquote, unquote_plus, urlsplit
from zoneinfo import ZoneInfo

from monitor.alert import outbox
from monitor.alert.outbox import CONSOLE, load_view
from monitor.alert.render import (Templates, escape_markdown, render_alert, render_digest,
                                  render_health)
from monitor.models import AlertSettings, Destination, Message
from monitor.store import StoreThread, from_text

log = logging.getLogger("monitor.alert")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    possible_duplicate: bool = False  # a TIMEOUT: the service may have delivered it
    error: str | None = None


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    cancelled: int = 0  # their destination was removed from the config
    errors: dict[str, str] = field(default_factory=dict)  # destination -> why its last send failed

    def add(self, other: "DispatchReport") -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.cancelled += other.cancelled
        self.errors.update(other.errors)


def load_notifier(destination: Destination):
    """An apprise object holding this destination's one URL, or None when apprise refuses it.

    Building one parses the URL and, the first time, loads apprise's plugins:
    slow enough that callers run it off the event loop and keep the result.
    """
    import apprise

    notifier = apprise.Apprise()
    return notifier if notifier.add(destination.url) else None


_HIT_MARK = re.compile(r"\[\[(.+?)\]\]")


def print_to_console(text: str) -> None:
    """An alert on standard output: its [[hits]] in bold yellow when that is a terminal."""
    if sys.stdout.isatty():
        text = _HIT_MARK.sub("\x1b[1;33m\\1\x1b[0m", text)
    print(text, flush=True)


async def send(destination: Destination, message: Message, *, timeout: float,
               console: Callable[[str], None] = print_to_console, notifier: Any = None) -> SendOutcome:
    """Deliver one message to one destination; never raises, never leaks the URL's secrets."""
    if destination.url == CONSOLE.url:
        console(f"{message.subject}\n{message.text}\n")
        return SendOutcome(True)
    if notifier is None:
        notifier = await asyncio.get_running_loop().run_in_executor(None, load_notifier, destination)
    if notifier is None:
        return SendOutcome(False, error=f"apprise cannot load the URL of {destination.name}")
    import apprise

    service = notifier[0]
    formats = service.notify_format  # apprise 2.x: the service's formats, preferred first
    body_format = formats[0] if isinstance(formats, (tuple, list)) else formats
    body = {apprise.NotifyFormat.HTML: message.html,
            apprise.NotifyFormat.MARKDOWN: message.markdown}.get(body_format, message.text)
    title = message.subject
    if getattr(service, "title_maxlen", 1) <= 0:
        # The service puts the title inside the body, so it is read in the body's format.
        title = {apprise.NotifyFormat.HTML: html.escape(title),
                 apprise.NotifyFormat.MARKDOWN: escape_markdown(title)}.get(body_format, title)
    _capture_apprise_causes()
    try:
        result = await notifier.async_notify(body=body, title=title, body_format=body_format,
                                             timeout=timeout, log_level=logging.DEBUG)
    except Exception as exc:  # a plugin bug must not kill the dispatcher
        return SendOutcome(False, error=redact(f"{type(exc).__name__}: {exc}", destination))
    status = result.status
    if status == apprise.AppriseResultStatus.SUCCESS:
        return SendOutcome(True)
    timed_out = status == apprise.AppriseResultStatus.TIMEOUT or result.timeout_count > 0
    return SendOutcome(False, possible_duplicate=timed_out,
                       error=redact(_error_text(result, status), destination))


_CAUSE = re.compile(r"^[\w ]*(?:Exception|Error)(?: Details)?:\s*(.+)", re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CAUSE_LIMIT = 300  # characters of a cause kept (an HTTP library's message can be long)


def _error_text(result: Any, status: Any) -> str:
    """What went wrong in words a user can act on: apprise's last warning or error for
    the call, then the cause it logged (an exception's message), else the status name."""
    entries = list(result.logs())
    warnings = [e.message for e in entries if e.level in ("WARNING", "ERROR", "CRITICAL")]
    causes = [found[1].strip() for e in entries if e.level == "DEBUG"
              for found in [_CAUSE.match(e.message)] if found]
    parts = [status.name]
    if warnings:
        parts.append(warnings[-1])
    if causes:
        cause = causes[-1]
        errno = _ERRNO.search(cause)  # "Max retries exceeded ... [Errno 111] Connection refused"
        cause = errno[1].strip() if errno else cause
        parts.append(cause if len(cause) <= _CAUSE_LIMIT else cause[:_CAUSE_LIMIT - 1] + "…")
    return ": ".join(part.rstrip(".") for part in parts)


class _WarningsOnward(logging.Handler):
    """Passes apprise's WARNING and above on to the root logger, as if it still propagated."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


_CAPTURE_READY = False


def _capture_apprise_causes() -> None:
    """Let apprise create its debug records (its per-call capture keeps them for the
    error text) without them reaching this process's log handlers."""
    global _CAPTURE_READY
    if _CAPTURE_READY:
        return
    _CAPTURE_READY = True
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() <= logging.DEBUG:
        return  # someone asked for apprise's debug output: leave it alone
    onward = _WarningsOnward(level=apprise_log.getEffectiveLevel())
    apprise_log.addHandler(onward)
    apprise_log.propagate = False
    apprise_log.setLevel(logging.DEBUG)


def redact(text: str, destination: Destination) -> str:
    """Remove every secret-looking part of the destination's URL from a message.

    A part counts as secret when it is in the real URL but not in the
    privacy-masked one: passwords, tokens in paths and query values, as
    written and decoded, and each word of a value such as "Bearer TOKEN"
    (a message may quote the token alone).
    """
    parts = urlsplit(destination.url)
    pieces = re.split(r"[/@:]", parts.netloc + parts.path)
    pieces += [pair.partition("=")[2] for pair in parts.query.split("&")]  # by hand: keeps "+" and "%20"
    candidates: set[str] = set()
    for piece in pieces:
        for form in (piece, unquote(piece), unquote_plus(piece)):
            candidates.add(form)
            candidates.update(form.split())
    for secret in sorted(candidates, key=len, reverse=True):
        if len(secret) >= 4 and secret not in destination.safe_url:
            text = text.replace(secret, "***")
    return text


class Dispatcher:
    """Sends what the outbox says is due, one task per destination."""

    SENDS_PER_DESTINATION = 4  # concurrent sends to one destination

    def __init__(self, store: StoreThread, destinations: Sequence[Destination],
                 settings: AlertSettings, tz: str, templates: Templates = Templates(), *,
                 clock: Clock, console: Callable[[str], None] = print_to_console) -> None:
        self.store = store
        self.destinations = {d.name: d for d in (destinations or (CONSOLE,))}
        self.settings = settings
        self.tz = tz
        self.templates = templates
        self.clock = clock
        self.console = console
        self._lock = asyncio.Lock()  # one dispatch pass at a time
        self._notifiers: dict[str, Any] = {}  # destination name -> loaded apprise object
        # Alerts delivered whose "sent" could not be written (a full disk, say): never send
        # them again from this process; keep trying to record them.
        self._unrecorded: set[int] = set()

    async def warm_up(self) -> None:
        """Load apprise and every destination's URL now, off the loop, rather than at the
        first alert: importing apprise's plugins competes with the event loop for the GIL."""
        for destination in self.destinations.values():
            await self._notifier(destination)

    async def dispatch_due(self) -> DispatchReport:
        async with self._lock:
            if self._unrecorded:
                await self.store.call(outbox.mark_sent, sorted(self._unrecorded), self.clock())
                self._unrecorded.clear()
            rows = await self.store.call(outbox.due_alerts, self.clock())
            by_destination: dict[str, list[dict]] = defaultdict(list)
            for row in rows:
                by_destination[row["destination"]].append(row)
            reports = await asyncio.gather(*(self._deliver(name, batch)
                                             for name, batch in by_destination.items()))
            total = DispatchReport()
            for report in reports:
                total.add(report)
            return total

    async def _deliver(self, name: str, rows: list[dict]) -> DispatchReport:
        report = DispatchReport()
        destination = self.destinations.get(name)
        if destination is None:
            ids = [row["id"] for row in rows]
            report.cancelled += await self.store.call(
                outbox.cancel, ids,
                f"cancelled: destination {name!r} was removed from alerts.toml", self.clock())
            log.warning("alerts cancelled destination=%s alerts=%d reason=removed from config",
                        name, len(ids))
            return report
        digest = [row for row in rows if row["delivery"] == "digest"]
        singles = [row for row in rows if row["delivery"] != "digest"]
        # Messages are rendered just before their send, not all at once up front.
        batches: list[tuple[list[int], Callable[[], Message]]] = [
            ([row["id"]], functools.partial(self._render, row)) for row in singles]
        if digest:
            batches.append(([row["id"] for row in digest],
                            functools.partial(self._render_digest, name, digest)))
        notifier = await self._notifier(destination)
        lanes = asyncio.Semaphore(self.SENDS_PER_DESTINATION)

        async def deliver(ids: list[int], render: Callable[[], Message]) -> None:
            async with lanes:
                outcome = await send(destination, render(), timeout=self.settings.send_timeout,
                                     console=self.console, notifier=notifier)
                await self._record(name, ids, outcome, report)

        await asyncio.gather(*(deliver(ids, render) for ids, render in batches))
        return report

    def _render_digest(self, name: str, rows: list[dict]) -> Message:
        views = [load_view(row["payload"]) for row in rows]
        since = from_text(min(row["created"] for row in rows))
        period = f"since {since.astimezone(ZoneInfo(self.tz)):%Y-%m-%d %H:%M %Z}"
        return render_digest(views, self.tz, destination=name, period=period,
                             templates=self.templates)

    async def _notifier(self, destination: Destination) -> Any:
        if destination.url == CONSOLE.url:
            return None
        if destination.name not in self._notifiers:
            loop = asyncio.get_running_loop()
            self._notifiers[destination.name] = await loop.run_in_executor(
                None, load_notifier, destination)
        return self._notifiers[destination.name]

    async def _record(self, name: str, ids: list[int], outcome: SendOutcome,
                      report: DispatchReport) -> None:
        """Write one send's outcome to the outbox (only after the send returned)."""
        now = self.clock()
        if outcome.ok:
            try:
                await self.store.call(outbox.mark_sent, ids, now)
            except Exception:
                self._unrecorded.update(ids)
                raise
            report.sent += len(ids)
            log.info("alert sent destination=%s alerts=%d", name, len(ids))
        else:
            report.dead += await self.store.call(
                outbox.mark_failed, ids, now, outcome.error or "failed", self.settings,
                possible_duplicate=outcome.possible_duplicate)
            report.failed += len(ids)
            report.errors[name] = outcome.error or "failed"
            log.warning("alert failed destination=%s alerts=%d error=%r", name, len(ids),
                        outcome.error)

    def _render(self, row: dict) -> Message:
        if row["kind"] == "health":
            data = json.loads(row["payload"])
            return render_health(data["feed"], data["url"], data["event"], data["detail"], self.tz,
                                 self.clock())
        return render_alert(load_view(row["payload"]), self.tz, self.templates)
