"""The orchestrator: the one place that knows the order of the stages.

For each feed poll: fetch -> parse -> classify against the store -> match the
new and changed stories -> store the entries, their matches and the feed's
new state in one transaction. `run_once` polls every due feed a single time
and sends the alerts that fall due; `monitor.daemon` runs the same pipeline on
a schedule. `prepare` compiles the config folder (watch rules, destinations,
templates) into what the pipeline runs with.

Parsing is CPU-bound and runs in worker processes (both cores, and a hostile
feed cannot hold the event loop's GIL); matching runs on one worker thread of
this process, off the event loop's thread (matching inside the parser
processes was measured: no faster on 2 cores and +90 MB resident at 500
feeds, since each process maps the language data). Every database call goes through the
store's owner thread; polls that store no stories share transactions
(monitor.storebatch).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gc
import logging
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence
from urllib.parse import unquote, urlsplit

from monitor.config import Config
from monitor.fetch import Fetcher
from monitor.models import (Entry, FeedConfig, FeedState, FetchOutcome, FetchRequest,
                            FetchResult, Match, ParsedFeed, ParseError, StoreResult)
from monitor.schedule import after_poll, counts_as_new, is_due
from monitor.store import AlertPlanner, Store, StoreThread
from monitor.storebatch import PollRecorder
from monitor.masking import mask_url
from monitor.origins import credentials_allowed, hold_credentialed_move
from monitor.urls import strip_userinfo

log = logging.getLogger("monitor.service")

if TYPE_CHECKING:
    from monitor.alert.dispatch import Dispatcher, DispatchReport
    from monitor.alert.render import Templates
    from monitor.models import AlertSettings, Destination

Clock = Callable[[], datetime]
MatchFn = Callable[[Entry, Sequence[str]], list[Match]]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PollReport:
    """What one feed poll did, for summaries and logs."""

    feed: str
    outcome: str  # ok, not_modified, unchanged, gone, error, skipped
    new: int = 0
    updated: int = 0
    matched: int = 0
    error: str | None = None
    duration: float = 0.0
    error_kind: str | None = None
    rules: tuple[str, ...] = ()  # rules that matched the new and changed stories


@dataclass
class CycleSummary:
    """Totals of one pass over the feeds (`run --once`, or a daemon summary window)."""

    reports: list[PollReport] = field(default_factory=list)
    alerts: "DispatchReport | None" = None

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
                 alerting: "Alerting | None" = None) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.match = match
        self.alerting = alerting
        self.clock = clock
        self.rng = rng or random.Random()
        self._parse_workers = default_parse_workers() if parse_workers is None else parse_workers
        self._parser: Executor | None = None  # started on the first body to parse
        self._parse_slots = asyncio.Semaphore(2 * max(1, self._parse_workers))
        self._under_way = asyncio.Semaphore(config.fetch.global_limit)
        self._matcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-match")
        self._recorder = PollRecorder(store)

    def reconfigure(self, config: Config, match: MatchFn | None,
                    alerting: "Alerting | None") -> None:
        """Run later polls with a reloaded config; polls under way finish with the old one.

        A changed `global_limit` takes effect for polls that start from now on.
        """
        if config.fetch.global_limit != self.config.fetch.global_limit:
            self._under_way = asyncio.Semaphore(config.fetch.global_limit)
        self.config, self.match, self.alerting = config, match, alerting

    def close(self, wait: bool = True) -> None:
        """Shut the workers down; wait=False (on SIGTERM) also ends parser processes at once."""
        if self._parser is not None:
            if not wait:
                _end_processes(self._parser)  # a hostile feed's parse must not delay shutdown
            self._parser.shutdown(wait=wait, cancel_futures=True)
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
            return PollReport(feed.name, "skipped")
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
                parsed = await self._parse(result, feed)
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
                              error_kind=fetch_log["error_kind"])

        stored, rules = await self._store_entries(feed, state, parsed, now, columns, fetch_log)
        await self._health(feed, state, columns, now)
        _log_poll(feed.name, "ok", result, None, stored)
        return PollReport(feed.name, "ok", new=stored.new, updated=stored.updated,
                          matched=stored.matched, duration=time.monotonic() - started,
                          rules=rules)

    async def _store_entries(self, feed: FeedConfig, state: FeedState, parsed: ParsedFeed,
                             now: datetime, columns: dict,
                             fetch_log: dict) -> tuple[StoreResult, tuple[str, ...]]:
        classified = await self.store.call(Store.classify, feed.name, parsed.entries)
        fresh = [(entry, kind) for entry, kind in classified if kind in ("new", "updated")]
        loop = asyncio.get_running_loop()
        matches, unmatched = await loop.run_in_executor(self._matcher, self._match_all,
                                                        [entry for entry, _ in fresh], feed.tags)
        columns["match_warning"] = _match_warning(unmatched, len(fresh))
        if unmatched:
            log.warning("match feed=%s skipped=%d reason=%r", feed.name, len(unmatched),
                        next(iter(unmatched.values())))
        backlog = self.config.poll.backlog_window
        items = []
        for (entry, kind), entry_matches in zip(fresh, matches):
            alertable = kind == "updated" or counts_as_new(
                entry.published, now, baselined=state.baselined, backlog_window=backlog)
            items.append((entry, kind, alertable, entry_matches))
        items.extend((entry, kind, False, []) for entry, kind in classified if kind == "same")
        fetch_log.update(entries_new=sum(1 for _, k in fresh if k == "new"),
                         entries_updated=sum(1 for _, k in fresh if k == "updated"))
        planner = self.alerting.planner if self.alerting else None
        stored = await self.store.call(Store.save_poll, feed.name, items, now, columns, fetch_log,
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

    def _match_all(self, entries: list[Entry],
                   feed_tags: Sequence[str]) -> tuple[list[list[Match]], dict[str, str]]:
        """Each entry's matches, and the guids of those given up (over a budget) with why.

        One story may take STORY_BUDGET seconds (match_entry's default), one poll
        FEED_MATCH_BUDGET in all: the single matching thread is shared by every
        feed, so a hostile one must not hold it for minutes.
        """
        from monitor.match.engine import MatchBudgetExceeded

        if self.match is None:
            return [[] for _ in entries], {}
        results: list[list[Match]] = []
        unmatched: dict[str, str] = {}
        deadline = time.monotonic() + FEED_MATCH_BUDGET
        for entry in entries:
            if time.monotonic() > deadline:
                unmatched[entry.guid] = (f"not matched: this poll's stories took over "
                                         f"{FEED_MATCH_BUDGET:g} s to match")
                results.append([])
                continue
            try:
                results.append(self.match(entry, feed_tags))
            except MatchBudgetExceeded:
                unmatched[entry.guid] = "not matched: the story took too long to match"
                results.append([])
        return results, unmatched

    async def _parse(self, result: FetchResult, feed: FeedConfig) -> ParsedFeed:
        """Parse in a worker, within the time limit; a crashed or stuck worker is replaced.

        At most two jobs per worker are in the pool at once, so a job's time in
        the pool is its own parse plus at most one other's: the backstop, for a
        worker that no longer answers even its own timer, can be measured from
        submission.
        """
        from monitor.parse import parse_feed_within  # not imported by a run that parses nothing

        limit = self.config.fetch.parse_timeout
        job = functools.partial(parse_feed_within, limit, result.body, dict(result.headers),
                                feed=feed.name, url=result.final_url, language=feed.language)
        backstop = 2 * limit + 5.0 if limit > 0 else None
        async with self._parse_slots:
            for attempt in (1, 2):
                parser = self._parser_pool()
                try:
                    return await asyncio.wait_for(
                        asyncio.get_running_loop().run_in_executor(parser, job), backstop)
                except TimeoutError:
                    self._replace_parser(parser, kill=True)
                    raise ParseError(f"the parser stopped responding on this feed (no result "
                                     f"after {backstop:g} s); its process was replaced") from None
                except BrokenProcessPool:
                    # Another feed's crash or stuck parse may have ended the pool under
                    # this job: it gets one more try on a fresh pool before it is blamed.
                    self._replace_parser(parser)
                    if attempt == 2:
                        raise ParseError("the parser process crashed on this feed") from None
                except ParseError:
                    raise
                except Exception as exc:  # a parser bug must cost this feed one poll, not the cycle
                    log.exception("parser failed feed=%s", feed.name)
                    raise ParseError(f"the parser failed on this feed ({type(exc).__name__})") from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _parser_pool(self) -> Executor:
        if self._parser is None:
            self._parser = _parse_executor(self._parse_workers)
        return self._parser

    def _replace_parser(self, parser: Executor, *, kill: bool = False) -> None:
        """Drop a broken or stuck pool (once, whoever notices first); the next job starts a new one."""
        if kill:
            _end_processes(parser)
        if self._parser is parser:
            self._parser = None
        parser.shutdown(wait=False, cancel_futures=True)


FEED_MATCH_BUDGET = 20.0  # seconds of matching per poll of one feed


def _match_warning(unmatched: dict[str, str], total: int) -> str | None:
    """The feed-health line for stories stored unmatched; None clears an old one."""
    if not unmatched:
        return None
    return (f"{len(unmatched)} of {total} new or changed stories were stored without "
            f"matching ({next(iter(unmatched.values()))})")


def _end_processes(executor: Executor) -> None:
    """Kill a process pool's workers now, whatever they are doing (no-op for threads)."""
    if isinstance(executor, ProcessPoolExecutor):
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.kill()


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


def default_parse_workers() -> int:
    """One parser process per core, at most two: parsing is the pipeline's main CPU cost."""
    return max(1, min(2, os.cpu_count() or 1))


def _parse_executor(workers: int) -> Executor:
    """Worker processes for parsing; 0 parses on a thread (small runs, tests of the stage).

    forkserver, not fork: the daemon has threads (store, matcher) that a fork would copy
    mid-lock.
    """
    if workers <= 0:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-parse")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=_init_parser_worker, initargs=(os.getpid(),))


def _init_parser_worker(owner_pid: int) -> None:
    """Parser workers leave Ctrl-C to the daemon, and end when the daemon is gone.

    A worker blocks on its task queue, whose write end it holds itself, so it
    never sees the daemon die (SIGKILL, or an exit that skipped the pool's
    shutdown); without this check it, and the forkserver it keeps alive, would
    linger as orphans.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = _process_start(owner_pid)  # tells the owner from a later process reusing its pid

    def watch_owner() -> None:
        while True:
            time.sleep(1.0)
            if _process_start(owner_pid) != started:
                os._exit(0)

    threading.Thread(target=watch_owner, name="owner-watch", daemon=True).start()


def _process_start(pid: int) -> str | None:
    """The process's start time from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


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


async def poll_all(pipeline: Pipeline, feeds: Sequence[FeedConfig], *,
                   progress: Callable[[PollReport], None] | None = None,
                   states: dict[str, FeedState] | None = None) -> CycleSummary:
    """Poll the given feeds concurrently (the fetcher enforces the limits); STATES, if
    given, are the feeds' states just read."""
    summary = CycleSummary()

    async def one(feed: FeedConfig) -> None:
        report = await pipeline.poll(feed, (states or {}).get(feed.name))
        summary.add(report)
        if progress is not None:
            progress(report)

    await asyncio.gather(*(one(feed) for feed in feeds))
    return summary


async def run_once(config: Config, db_path: Path, match: MatchFn | None = None, *,
                   alerting: Alerting | None = None, clock: Clock = utc_now,
                   progress: Callable[[PollReport], None] | None = None,
                   deliver_wait: float = 60.0) -> CycleSummary:
    """Poll every active feed now, whatever its interval, honouring backoff and Retry-After;
    then send the alerts that are due, waiting (at most `deliver_wait` seconds) for
    alerts held by a short grouping delay."""
    store = StoreThread(db_path)
    try:
        await store.call(Store.sync_feeds, config.feeds, clock())
        states = {s.name: s for s in await store.call(Store.feed_states)}
        now = clock()
        due = [feed for feed in config.feeds if feed.name in states and is_due(states[feed.name], now)]
        skipped = [feed for feed in config.feeds if feed not in due]
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, match, clock=clock, alerting=alerting)
            try:
                summary = await poll_all(pipeline, due, progress=progress, states=states)
            finally:
                pipeline.close()
        for feed in skipped:
            summary.add(PollReport(feed.name, "skipped"))
        if alerting is not None:
            wait = min(deliver_wait, alerting.settings.grouping_delay + 1.0)
            summary.alerts = await _deliver_due(alerting.dispatcher(store, clock), store, clock, wait)
        await store.call(Store.prune, clock(), config.poll.retention)
        await store.call(Store.set_meta, "last_cycle", clock().isoformat())
        return summary
    finally:
        store.close()


async def _deliver_due(dispatcher: "Dispatcher", store: StoreThread, clock: Clock,
                       wait: float) -> "DispatchReport":
    """Send what is due now, then new alerts that fall due within `wait` seconds (held by a
    grouping delay); failed ones wait for their retry time, digests for their schedule."""
    from monitor.alert.outbox import next_pending

    report = await dispatcher.dispatch_due()
    deadline = time.monotonic() + wait
    while True:
        upcoming = await store.call(next_pending)
        if upcoming is None:
            return report
        delay = (upcoming - clock()).total_seconds()
        if delay > deadline - time.monotonic():
            return report
        await asyncio.sleep(max(0.0, delay))
        report.add(await dispatcher.dispatch_due())


def load_watch_for(config: Config):
    """The watch rules of the config folder (watch.toml); an absent file means no rules."""
    from monitor.match import load_watch

    return load_watch(config.dir / "watch.toml")


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@dataclass(frozen=True)
class Alerting:
    """Destinations, delivery policy and templates, plus the planner that fills the outbox."""

    destinations: "tuple[Destination, ...]"
    admins: "tuple[Destination, ...]"  # tagged "admin": feed-health alerts
    settings: "AlertSettings"
    tz: str
    templates: "Templates"
    planner: AlertPlanner
    warnings: tuple[str, ...] = ()

    def dispatcher(self, store: StoreThread, clock: Clock) -> "Dispatcher":
        from monitor.alert.dispatch import Dispatcher

        return Dispatcher(store, self.destinations, self.settings, self.tz, self.templates,
                          clock=clock)


@dataclass(frozen=True)
class Prepared:
    """The config folder compiled into what the pipeline runs with."""

    config: Config
    match: MatchFn | None
    alerting: Alerting


def prepare(config: Config, env: dict[str, str] | None = None, *, log_warnings: bool = True,
            cache_dir: Path | None = None) -> Prepared:
    """Validate and compile watch.toml, alerts.toml and the templates (ConfigError on mistakes).

    Warnings (a lower-case `or` in a query, a secrets file others can read) are
    logged, so the daemon reports them at start and on every reload; a command
    that prints them itself passes log_warnings=False. CACHE_DIR (the database's
    folder) keeps the watch's word analyses between runs (monitor.match.cache), so
    an unchanged watch compiles without loading pymorphy3."""
    from monitor.alert.destinations import load_alerts
    from monitor.alert.outbox import Planner
    from monitor.alert.render import load_templates
    from monitor.alert.route import admin_recipients
    from monitor.match import match_entry
    from monitor.match.cache import compile_watch

    watch = load_watch_for(config)
    match: MatchFn | None = None
    if any(rule.enabled for rule in watch.rules):
        matcher = compile_watch(watch, _read_or_empty(config.dir / "watch.toml"), cache_dir)

        def match(entry: Entry, feed_tags: Sequence[str]) -> list[Match]:
            return match_entry(matcher, entry, feed_tags)

    alerts = load_alerts(config.dir, dict(os.environ) if env is None else env)
    planner = Planner(alerts.destinations, alerts.settings, config.timezone,
                      {rule.name: rule.description for rule in watch.rules})
    alerting = Alerting(destinations=tuple(alerts.destinations),
                        admins=tuple(admin_recipients(alerts.destinations)),
                        settings=alerts.settings, tz=config.timezone,
                        templates=load_templates(config.dir), planner=planner,
                        warnings=tuple(alerts.warnings))
    if log_warnings:
        from monitor.match.watch import watch_warnings

        for warning in (*watch_warnings(watch), *alerting.warnings):
            log.warning("config %s", warning)
    return Prepared(config, match, alerting)
