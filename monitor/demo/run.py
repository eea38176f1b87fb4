"""`monitor demo`: the whole system on sample feeds, offline, in about a minute.

It builds a throw-away config folder from the shipped defaults (the real
watch, no alert destinations, so alerts print to the console), serves the
sample feeds on 127.0.0.1, points feeds.toml at them with a short interval
and runs the real daemon in-process. A third of the way in it publishes a
held-back story, and the next poll turns it into an alert.

The narration reads what happened from the database the daemon writes (a
read-only connection on its own thread), so it tells what the system really
did rather than what the demo expects. It describes a poll only once that
poll's alerts have been printed, so the story reads top to bottom.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from monitor.alert.outbox import list_alerts
from monitor.config.durations import format_duration
from monitor.config.load import load_config
from monitor.config.paths import init_config_dir
from monitor.demo.samples import SampleFeed, SampleStory, load_samples
from monitor.demo.server import DemoFeedServer
from monitor.edit.feeds import add_feed
from monitor.errors import UsageError
from monitor.ingest.prepare import Prepared, prepare
from monitor.store.database import Store

MIN_DURATION = 10.0  # seconds: time for a first poll, the added story and its poll
TICK = 0.25  # seconds between looks at the database
PATIENCE = 3.0  # seconds a poll's description waits for its alerts to be printed
CONFIG_FOLDER = "config"
DATABASE_FILE = "monitor.db"

Say = Callable[[str], None]


# What to do after the demo, runnable as printed (tests/test_cli_newcomer.py runs it): a
# password goes in secrets.toml (mode 0600), and the alert URL names it as ${SMTP_PASSWORD}.
NEXT_STEPS = (
    "monitor init ~/watch      # this watch, alerts.toml, and a few real feeds to start with",
    "monitor --config ~/watch feeds add https://example.org/rss/      # your feed, or a page of its site",
    "(umask 077; echo 'SMTP_PASSWORD = \"your-password\"' >> ~/watch/secrets.toml)      # secrets go here",
    "monitor --config ~/watch alerts add "
    "'mailtos://me:${SMTP_PASSWORD}@mail.example.org?to=desk@example.org'",
    "monitor --config ~/watch alerts test      # did the test message arrive?",
    "monitor --config ~/watch run      # or as a service: see the README",
)

@dataclass(frozen=True)
class DemoResult:
    """What the demo's daemon did, as recorded in its database."""

    stories: int
    matched: int  # stories that matched at least one rule
    alerts_sent: int
    on_topic: tuple[int, int]  # (matched, total) of the sample stories meant to match
    off_topic: tuple[int, int]  # (matched, total) of the others
    added_story_alerted: bool
    interrupted: bool  # ended by Ctrl-C or SIGTERM rather than the clock


def poll_interval(duration: float) -> float:
    """A tenth of the demo, 2 to 5 seconds: several polls, yet gentle on the CPU."""
    return float(max(2, min(5, round(duration / 10))))


def check_duration(seconds: float) -> None:
    if seconds < MIN_DURATION:
        raise UsageError(f"--duration {format_duration(seconds)} is too short: the demo needs at "
                         f"least {format_duration(MIN_DURATION)} to poll, add a story and poll again")


def run_demo(duration: float, *, keep: Path | None = None, say: Say = print) -> DemoResult:
    """Run the demo for DURATION seconds; keep its config and database in KEEP if given."""
    check_duration(duration)
    started = time.monotonic()
    workdir = _kept_folder(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    try:
        # APScheduler logs a traceback for every poll job cancelled by the stop at the end;
        # the narration reads what happened from the database instead.
        with _quiet("apscheduler.executors", logging.CRITICAL):
            return asyncio.run(_Demo(duration, workdir, say, started, kept=keep is not None).run())
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _kept_folder(path: Path) -> Path:
    """--keep DIR: a new or empty folder, so the demo never mixes with someone's real config."""
    path = path.expanduser().absolute()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--keep {path}: give a new or empty folder (this one is not empty)"
                         if path.is_dir() else f"--keep {path}: this is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextmanager
def _quiet(logger: str, level: int = logging.ERROR) -> Iterator[None]:
    """Silence a logger below LEVEL for a while."""
    target = logging.getLogger(logger)
    before = target.level
    target.setLevel(level)
    try:
        yield
    finally:
        target.setLevel(before)


class _Demo:
    def __init__(self, duration: float, workdir: Path, say: Say, started: float, *,
                 kept: bool) -> None:
        self.duration = duration
        self.workdir = workdir
        self.config_dir = workdir / CONFIG_FOLDER
        self.db_path = workdir / DATABASE_FILE
        self.say = say
        self.started = started
        self.deadline = started + duration
        self.kept = kept
        self.interval = poll_interval(duration)
        self.stop = asyncio.Event()

    def elapsed(self) -> str:
        return f"+{time.monotonic() - self.started:.0f}s"

    async def run(self) -> DemoResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run(self) -> DemoResult:
        from monitor.runtime.daemon import Daemon

        feeds = load_samples()
        with DemoFeedServer(feeds, datetime.now(UTC)) as server:
            prepared, rules = self._configure(feeds, server)
            self._introduce(feeds, server, rules, prepared.config.poll.backlog_window)
            narrator = _Narrator(self.say, self.elapsed, feeds, prepared.config.poll.backlog_window)
            daemon = Daemon(prepared, self.db_path)
            await daemon.start()
            try:
                reader = _Reader(self.db_path)
                try:
                    await self._watch(server, feeds, reader, narrator)
                finally:
                    reader.close()
            finally:
                await daemon.stop()
        final = _final_snapshot(self.db_path)
        narrator.tell(final, patience=0.0)
        result = _result(final, feeds, narrator, interrupted=self.stop.is_set())
        self._conclude(result)
        return result

    def _configure(self, feeds: list[SampleFeed], server: DemoFeedServer) -> tuple[Prepared, int]:
        """The config folder: shipped defaults without their feeds, plus the sample feeds."""
        from monitor.match import load_watch

        init_config_dir(self.config_dir, no_feeds=True)
        with _quiet("monitor.config.load"):  # warnings about the short intervals, which are deliberate
            for feed in feeds:
                add_feed(self.config_dir, url=server.feed_url(feed), name=feed.title,
                         interval=format_duration(self.interval), language=feed.language,
                         tags=["demo"])
            prepared = prepare(load_config(self.config_dir))
        rules = sum(rule.enabled for rule in load_watch(self.config_dir / "watch.toml").rules)
        return prepared, rules

    def _introduce(self, feeds: list[SampleFeed], server: DemoFeedServer, rules: int,
                   backlog_window: float) -> None:
        say, every = self.say, format_duration(self.interval)
        say(f"monitor demo: the whole system on sample feeds, offline, for "
            f"{format_duration(self.duration)}. Ctrl-C ends it early.")
        say("")
        say(f"1. A feed server on {server.base_url} serves {len(feeds)} sample feeds:")
        for feed in feeds:
            on_topic = sum(story.on_topic for story in feed.backlog)
            say(f"     {feed.title} ({feed.language}), {len(feed.backlog)} stories, {on_topic} of them "
                f"about China's role in Russia's war: {server.feed_url(feed)}")
        say(f"2. A config folder, {self.config_dir}, made like `monitor init`: the shipped "
            f"watch.toml ({rules} rules on that topic), feeds.toml with the sample feeds "
            f"polled every {every}, and alerts.toml without destinations, so alerts print here.")
        say(f"3. The daemon, as `monitor run` starts it: it polls each feed, matches new stories "
            f"against the watch, stores them in {self.db_path} and sends the alerts.")
        say(f"   On a feed's first poll, only stories published within the backlog window "
            f"({format_duration(backlog_window)}) can alert; older ones are stored quietly.")
        say("")

    async def _watch(self, server: DemoFeedServer, feeds: list[SampleFeed], reader: _Reader,
                     narrator: _Narrator) -> None:
        """Narrate until the time is up; publish the held-back story once the first polls are told."""
        publish_at = self.started + self.duration / 3
        pending = [(feed, story) for feed in feeds for story in feed.held_back]
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= self.deadline:
                return
            narrator.tell(await reader.snapshot())
            if pending and now >= publish_at and narrator.told_every_feed():
                feed, story = pending.pop(0)
                self._publish(server, feed, story, narrator)
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, min(TICK, self.deadline - now)))
            except TimeoutError:
                pass

    def _publish(self, server: DemoFeedServer, feed: SampleFeed, story: SampleStory,
                 narrator: _Narrator) -> None:
        server.publish(feed, story, datetime.now(UTC))
        narrator.expect(feed, story)
        self.say("")
        self.say(f"{self.elapsed()}  News breaks: {feed.title} publishes “{story.title}”.")
        self.say(f"       The daemon polls that feed every {format_duration(self.interval)}: "
                 f"watch its alert arrive.")
        self.say("")

    def _conclude(self, result: DemoResult) -> None:
        say = self.say
        say("")
        say("Stopped early." if result.interrupted else
            f"Time is up ({format_duration(self.duration)}).")
        on_matched, on_total = result.on_topic
        off_matched, off_total = result.off_topic
        say(f"Summary: {result.stories} stories stored; {result.matched} matched the watch "
            f"({on_matched} of the {on_total} sample stories on the topic, {off_matched} of the "
            f"{off_total} others); {result.alerts_sent} alerts sent to the console.")
        if not result.added_story_alerted and not result.interrupted:
            say("The added story had not alerted yet when the time ran out: try a longer --duration.")
        say("")
        say("To watch real feeds (put your own feed, mail server and password in):")
        for line in NEXT_STEPS:
            say(f"  {line}")
        if self.kept:
            say("")
            say(f"The demo's config and database are kept in {self.workdir}; look around with")
            say(f"  monitor --config {self.config_dir} --db {self.db_path} stories")


# --------------------------------------------------------------------------
# reading what the daemon did
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    polls: list[dict]  # fetch log rows with their feed's name, oldest first
    stories: list[dict]
    matched: dict[int, set[str]]  # entry id -> rules
    alerts: list[dict]

    @property
    def pending(self) -> bool:
        return any(alert["status"] == "pending" for alert in self.alerts)

    @property
    def alerted(self) -> set[int]:
        return {alert["entry_id"] for alert in self.alerts if alert["status"] == "sent"}


def _snapshot(store: Store) -> _Snapshot:
    everything = -1  # SQLite's LIMIT -1: no limit; the demo's database is small
    polls = [{**row, "feed": state.name} for state in store.feed_states()
             for row in store.fetch_log(state.name, limit=everything)]
    polls.sort(key=lambda row: row["id"])
    return _Snapshot(polls, store.list_stories(), store.matched_rules(),
                     list_alerts(store, limit=everything))


def _final_snapshot(path: Path) -> _Snapshot:
    """After the daemon stopped: this last connection also folds the WAL back into the file."""
    store = Store.open(path)
    try:
        return _snapshot(store)
    finally:
        store.close()


class _Reader:
    """A read-only connection to the demo's database on its own thread: the daemon owns the writer."""

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-demo-reader")
        self._store = self._executor.submit(Store.open, path, readonly=True).result()

    async def snapshot(self) -> _Snapshot:
        return await asyncio.wrap_future(self._executor.submit(_snapshot, self._store))

    def close(self) -> None:
        self._executor.submit(self._store.close).result()
        self._executor.shutdown()


@dataclass
class _Narrator:
    """Tells each poll that stored stories: what matched, what alerted, and why not."""

    say: Say
    elapsed: Callable[[], str]
    feeds: list[SampleFeed]
    backlog_window: float
    last_poll: int = 0
    told: set[str] = field(default_factory=set)  # feeds whose first poll was told
    expected: str | None = None  # guid of the story added midway
    added_story_alerted: bool = False
    _waiting_since: float | None = None

    def told_every_feed(self) -> bool:
        return all(feed.title in self.told for feed in self.feeds)

    def expect(self, feed: SampleFeed, story: SampleStory) -> None:
        self.expected = f"{feed.slug}/{story.id}"

    def tell(self, snapshot: _Snapshot, patience: float = PATIENCE) -> None:
        if snapshot.pending and not self._patience_over(patience):
            return  # the alerts of these polls are being printed: tell the polls after them
        self._waiting_since = None
        for poll in snapshot.polls:
            if poll["id"] > self.last_poll:
                self.last_poll = poll["id"]
                self._tell_poll(poll, snapshot)

    def _patience_over(self, patience: float) -> bool:
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= patience

    def _tell_poll(self, poll: dict, snapshot: _Snapshot) -> None:
        name, first = poll["feed"], poll["feed"] not in self.told
        self.told.add(name)
        if poll["outcome"] == "error":
            self.say(f"{self.elapsed()}  {name}: the poll failed: {poll['error']}")
            return
        stories = [s for s in snapshot.stories if s["feed"] == name and s["first_seen"] == poll["at"]]
        if not stories:
            return
        matched = [s for s in stories if s["id"] in snapshot.matched]
        alerted = [s for s in matched if s["id"] in snapshot.alerted]
        quiet = len(matched) - len(alerted)
        window = format_duration(self.backlog_window)
        if first:
            self.say(f"{self.elapsed()}  {name}: first poll, {_count(len(stories), 'story')} stored, "
                     f"{len(matched)} match the watch.")
            if alerted:
                self.say(f"       {len(alerted)} published within the backlog window ({window}): "
                         f"alerted (above).")
            if quiet:
                self.say(f"       {quiet} older: stored without an alert, as on any feed's first poll.")
        else:
            self.say(f"{self.elapsed()}  {name}: {_count(len(stories), 'new story')}, "
                     f"{len(matched)} matching the watch, {len(alerted)} alerted"
                     f"{' (above)' if alerted else ''}.")
        if self.expected and any(s["guid"] == self.expected and s["id"] in snapshot.alerted
                                 for s in stories):
            self.added_story_alerted = True
            self.say("       That was the added story: published -> polled -> matched -> stored "
                     "-> alerted. The daemon keeps polling until the time is up (Ctrl-C ends it now).")


def _count(number: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{number} {noun if number == 1 else plural}"


def _result(snapshot: _Snapshot, feeds: list[SampleFeed], narrator: _Narrator, *,
            interrupted: bool) -> DemoResult:
    matched_guids = {s["guid"] for s in snapshot.stories if s["id"] in snapshot.matched}
    stored = {s["guid"] for s in snapshot.stories}
    samples = [(f"{feed.slug}/{story.id}", story.on_topic) for feed in feeds for story in feed.stories]
    samples = [(guid, on_topic) for guid, on_topic in samples if guid in stored]

    def tally(on_topic: bool) -> tuple[int, int]:
        group = [guid for guid, flag in samples if flag == on_topic]
        return sum(guid in matched_guids for guid in group), len(group)

    return DemoResult(stories=len(snapshot.stories), matched=len(matched_guids),
                      alerts_sent=sum(a["status"] == "sent" for a in snapshot.alerts),
                      on_topic=tally(True), off_topic=tally(False),
                      added_story_alerted=narrator.added_story_alerted, interrupted=interrupted)
