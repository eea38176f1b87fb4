"""The orchestrator: the one place that knows the order of the stages.

For each feed poll: fetch -> parse -> classify against the store -> match the
new and changed stories -> store the entries, their matches and the feed's
new state, with their alerts, in one transaction (monitor.ingest.storing).
`run_once` (monitor.ingest.once) polls every due feed a single time and sends
the alerts that fall due; `monitor.runtime.daemon` runs the same pipeline on a
schedule. `prepare` (monitor.ingest.prepare) compiles the config folder (watch
rules, destinations, templates) into what the pipeline runs with.

Parsing is CPU-bound and runs in worker processes (monitor.ingest.workers:
both cores, and a hostile feed cannot hold the event loop's GIL); matching
runs on one worker thread of this process, off the event loop's thread
(matching inside the parser processes was measured: no faster on 2 cores and
+90 MB resident at 500 feeds, since each process maps the language data).
Every database call goes through the store's owner thread; polls that store
no stories share transactions (monitor.store.batch).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from monitor.config.load import Config
from monitor.ingest.fetch import Fetcher
from monitor.ingest.origins import credentials_allowed, hold_credentialed_move
from monitor.ingest.schedule import after_poll, counts_as_new
from monitor.ingest.storing import store_poll
from monitor.ingest.workers import MatchFn, ParsePool, match_all, match_warning
from monitor.masking import mask_url
from monitor.models import (
    FeedConfig,
    FeedState,
    FetchOutcome,
    FetchRequest,
    FetchResult,
    ParsedFeed,
    ParseError,
    PollReport,
    StoreResult,
)
from monitor.store.batch import PollRecorder
from monitor.store.database import Store, StoreThread
from monitor.urls import strip_userinfo

log = logging.getLogger("monitor.ingest.pipeline")

if TYPE_CHECKING:
    from monitor.alert.dispatch import DispatchReport
    from monitor.ingest.prepare import Alerting

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleSummary:
    """Totals of one pass over the feeds (`run --once`, or a daemon summary window)."""

    reports: list[PollReport] = field(default_factory=list)
    alerts: DispatchReport | None = None

    def add(self, report: PollReport) -> None:
        self.reports.append(report)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.reports if r.outcome == outcome)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.reports)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.reports)

    @property
    def matched(self) -> int:
        return sum(r.matched for r in self.reports)

    def line(self) -> str:
        polled = len([r for r in self.reports if r.outcome != "skipped"])
        return (f"polled={polled} ok={self.count('ok')} not_modified={self.count('not_modified')} "
                f"unchanged={self.count('unchanged')} errors={self.count('error')} "
                f"gone={self.count('gone')} skipped={self.count('skipped')} "
                f"new={self.new} updated={self.updated} matched={self.matched}"
                + (f" alerts_sent={self.alerts.sent} alerts_failed={self.alerts.failed}"
                   + (f" alerts_cancelled={self.alerts.cancelled}" if self.alerts.cancelled else "")
                   if self.alerts is not None else ""))

    @property
    def sends_failed(self) -> bool:
        """Whether an alert could not be sent this cycle (`run --once` then exits 1)."""
        return self.alerts is not None and self.alerts.failed > 0


class Pipeline:
    """Polls one feed end to end; shared by `run --once` and the daemon."""

    def __init__(self, config: Config, store: StoreThread, fetcher: Fetcher,
                 match: MatchFn | None = None, *, clock: Clock = utc_now,
                 rng: random.Random | None = None, parse_workers: int | None = None,
                 alerting: Alerting | None = None) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.match = match
        self.alerting = alerting
        self.clock = clock
        self.rng = rng or random.Random()
        self._parsers = ParsePool(parse_workers)
        self._under_way = asyncio.Semaphore(config.fetch.global_limit)
        self._matcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-match")
        self._recorder = PollRecorder(store)

    def reconfigure(self, config: Config, match: MatchFn | None,
                    alerting: Alerting | None) -> None:
        """Run later polls with a reloaded config; polls under way finish with the old one.

        A changed `global_limit` takes effect for polls that start from now on.
        """
        if config.fetch.global_limit != self.config.fetch.global_limit:
            self._under_way = asyncio.Semaphore(config.fetch.global_limit)
        self.config, self.match, self.alerting = config, match, alerting

    def close(self, wait: bool = True) -> None:
        """Shut the workers down; wait=False (on SIGTERM) also ends parser processes at once."""
        self._parsers.close(wait)
        self._matcher.shutdown(wait=wait, cancel_futures=True)

    async def poll(self, feed: FeedConfig, state: FeedState | None = None) -> PollReport:
        """Fetch, parse, match and store one feed; never raises for a bad feed.

        STATE: the feed's state if the caller has just read it (run_once reads every
        feed's in one query), else it is read here.

        At most `global_limit` polls are under way at once, from fetch to store:
        when parsing or matching falls behind, fetching waits, instead of every
        due feed's body (and then its parsed stories) piling up in memory.
        """
        async with self._under_way:
            return await self._poll(feed, state)

    async def _poll(self, feed: FeedConfig, state: FeedState | None) -> PollReport:
        started = time.monotonic()
        if state is None:
            state = await self.store.call(Store.feed_state, feed.name)
        if state is None or state.status in ("gone", "paused", "removed"):
            return PollReport(feed.name, "skipped", next_poll=state.next_poll if state else None)
        credentials = {**_credentials_header(feed.url), **feed.headers}
        url, validators = state.url, {"etag": state.etag, "last_modified": state.last_modified}
        if credentials and not credentials_allowed(feed.url, url):
            # moved to another origin by an older version: back to where the credentials belong
            url, validators = strip_userinfo(feed.url), {}
        request = FetchRequest(feed=feed.name, url=url, **validators, body_hash=state.body_hash,
                               headers=credentials, configured=strip_userinfo(feed.url))
        result = await self.fetcher.fetch(request, self.clock())
        parsed: ParsedFeed | None = None
        parse_error: str | None = None
        if result.outcome is FetchOutcome.OK and result.body is not None:
            try:
                parsed = await self._parsers.parse(result, feed, self.config.fetch.parse_timeout)
            except ParseError as exc:
                parse_error = str(exc)
        now = self.clock()
        update = after_poll(state, result, now, interval=feed.interval, poll=self.config.poll,
                            rng=self.rng, parse_error=parse_error)
        columns = hold_credentialed_move(dict(update.columns), feed.url, bool(credentials),
                                         failed=result.outcome is FetchOutcome.ERROR)
        if url != state.url and "url" not in columns:
            columns["url"] = url
        if parsed is not None:
            columns["baselined"] = True
            if parsed.title:
                columns["title"] = parsed.title
        fetch_log = _fetch_log_row(result, now, parse_error)
        keep = self.config.poll.fetch_log_keep
        elapsed = time.monotonic() - started
        if parsed is None:
            await self._recorder.record_poll(feed.name, columns, fetch_log, keep=keep)
            await self._health(feed, state, columns, now)
            outcome = "error" if parse_error else result.outcome.value
            error = parse_error or result.error
            _log_poll(feed.name, outcome, result, error)
            return PollReport(feed.name, outcome, error=error, duration=elapsed,
                              error_kind=fetch_log["error_kind"], next_poll=columns.get("next_poll"))

        stored, rules = await self._store_entries(feed, state, parsed, now, columns, fetch_log)
        await self._health(feed, state, columns, now)
        _log_poll(feed.name, "ok", result, None, stored)
        return PollReport(feed.name, "ok", new=stored.new, updated=stored.updated,
                          matched=stored.matched, duration=time.monotonic() - started,
                          rules=rules, next_poll=columns.get("next_poll"))

    async def _store_entries(self, feed: FeedConfig, state: FeedState, parsed: ParsedFeed,
                             now: datetime, columns: dict,
                             fetch_log: dict) -> tuple[StoreResult, tuple[str, ...]]:
        classified = await self.store.call(Store.classify, feed.name, parsed.entries)
        fresh = [(entry, kind) for entry, kind in classified if kind in ("new", "updated")]
        loop = asyncio.get_running_loop()
        matches, unmatched = await loop.run_in_executor(self._matcher, match_all, self.match,
                                                        [entry for entry, _ in fresh], feed.tags)
        columns["match_warning"] = match_warning(unmatched, len(fresh))
        if unmatched:
            log.warning("match feed=%s skipped=%d reason=%r", feed.name, len(unmatched),
                        next(iter(unmatched.values())))
        backlog = self.config.poll.backlog_window
        items = []
        for (entry, kind), entry_matches in zip(fresh, matches, strict=False):
            alertable = kind == "updated" or counts_as_new(
                entry.published, now, baselined=state.baselined, backlog_window=backlog)
            items.append((entry, kind, alertable, entry_matches))
        items.extend((entry, kind, False, []) for entry, kind in classified if kind == "same")
        fetch_log.update(entries_new=sum(1 for _, k in fresh if k == "new"),
                         entries_updated=sum(1 for _, k in fresh if k == "updated"))
        planner = self.alerting.planner if self.alerting else None
        stored = await self.store.call(store_poll, feed.name, items, now, columns, fetch_log,
                                       keep=self.config.poll.fetch_log_keep, planner=planner,
                                       unmatched=unmatched)
        return stored, tuple(m.rule for entry_matches in matches for m in entry_matches)

    async def _health(self, feed: FeedConfig, before: FeedState, columns: dict,
                      now: datetime) -> None:
        """A feed-health alert to the admin destinations once per state change, not per poll."""
        if self.alerting is None or not self.alerting.admins:
            return
        from monitor.alert.outbox import queue_health
        from monitor.alert.route import health_event

        if columns.get("status") == "gone":
            event: str | None = "gone"
        else:
            event = health_event(before.consecutive_errors, columns.get("consecutive_errors", 0),
                                 self.alerting.settings.health_failures)
        if event is None:
            return
        detail = columns.get("last_error") or before.last_error or ""
        if event == "recovered":
            detail = f"polling again after {before.consecutive_errors} failed polls"
        await self.store.call(queue_health, self.alerting.admins, feed=feed.name,
                              url=mask_url(strip_userinfo(columns.get("url", before.url))), event=event,
                              detail=detail, now=now)



def settle_for_latency() -> None:
    """Once start-up has loaded what the daemon keeps, keep the event loop responsive.

    * The objects loaded so far (modules, compiled rules, apprise) leave the
      garbage collector's sight (gc.freeze): a full collection then scans only
      what was made since, instead of pausing the loop for tens of ms. Frozen
      objects are still freed by reference counting; only cycles among them
      would be kept, and start-up makes few that later become garbage.
    * The GIL is handed over every 1 ms instead of 5: the loop shares it with
      the store and matcher threads and apprise's send threads, and each hand-
      over can cost it a whole interval (bench/alerts.py: 1,000 alerts sent at
      101-108 instead of 77-85 alerts/s, p99 loop stall 14 instead of 16 ms).
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def _credentials_header(url: str) -> dict[str, str]:
    """user:password@ in a configured feed URL, as the Basic auth header it stands for.

    The stored URL has no credentials; the fetcher drops this header when a
    redirect leaves the host.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}


def _fetch_log_row(result: FetchResult, now: datetime, parse_error: str | None) -> dict:
    return {
        "at": now,
        "outcome": "error" if parse_error else result.outcome.value,
        "status": result.status,
        "bytes": result.bytes_read,
        "duration": round(result.duration, 4),
        "error_kind": "not_a_feed" if parse_error else result.error_kind,
        "error": parse_error or result.error,
        "entries_new": 0,
        "entries_updated": 0,
    }


def _log_poll(name: str, outcome: str, result: FetchResult, error: str | None,
              stored: StoreResult | None = None) -> None:
    if error:
        log.warning("poll feed=%s outcome=%s status=%s error=%r", name, outcome, result.status, error)
    elif stored is not None and (stored.new or stored.updated):
        log.info("poll feed=%s outcome=ok new=%d updated=%d matched=%d", name, stored.new,
                 stored.updated, stored.matched)
    else:
        log.debug("poll feed=%s outcome=%s", name, outcome)
