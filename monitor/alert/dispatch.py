"""The dispatcher: sends due outbox rows through apprise and records each outcome.

Each destination is served by its own task, so a dead mail server never
delays a chat webhook. Immediate alerts go one message each; digest rows due
together go as one message. An alert is marked sent only after the send
returned: a crash in between repeats at most the alerts in flight, never
loses one. Alerts of a destination no longer configured are cancelled, not
retried. The sending itself (and why a send failed) is monitor.alert.apprise_send.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alert import outbox
from monitor.alert.apprise_send import SendOutcome, load_notifier, print_to_console, send
from monitor.alert.notices import render_health
from monitor.alert.outbox import CONSOLE, load_view
from monitor.alert.render import Templates, render_alert, render_digest
from monitor.models import AlertSettings, Destination, Message
from monitor.store import outbox as outbox_rows
from monitor.store.database import StoreThread
from monitor.store.values import from_text

log = logging.getLogger("monitor.alert")

Clock = Callable[[], datetime]


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    cancelled: int = 0  # their destination was removed from the config
    errors: dict[str, str] = field(default_factory=dict)  # destination -> why its last send failed

    def add(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.cancelled += other.cancelled
        self.errors.update(other.errors)


class Dispatcher:
    """Sends what the outbox says is due, one task per destination."""

    SENDS_PER_DESTINATION = 4  # concurrent sends to one destination

    def __init__(self, store: StoreThread, destinations: Sequence[Destination],
                 settings: AlertSettings, tz: str, templates: Templates | None = None, *,
                 clock: Clock, console: Callable[[str], None] = print_to_console) -> None:
        self.store = store
        self.destinations = {d.name: d for d in (destinations or (CONSOLE,))}
        self.settings = settings
        self.tz = tz
        self.templates = templates or Templates()
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
                await self.store.call(outbox_rows.mark_sent, sorted(self._unrecorded), self.clock())
                self._unrecorded.clear()
            rows = await self.store.call(outbox_rows.due_alerts, self.clock())
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
                outbox_rows.cancel, ids,
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
                await self.store.call(outbox_rows.start_sending, ids, self.clock())
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
                await self.store.call(outbox_rows.mark_sent, ids, now)
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
