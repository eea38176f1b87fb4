"""The pipeline's workers: parser processes, and the budgeted matching of a poll's stories.

Parsing is CPU-bound and runs in worker processes (both cores, and a hostile
feed cannot hold the event loop's GIL); a crashed or stuck worker is replaced
and costs at most the feed it was parsing one poll. Matching runs on one worker
thread of the daemon's process (monitor.ingest.pipeline), within a time budget
per story and per poll.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from monitor.models import Entry, FeedConfig, FetchResult, Match, ParsedFeed, ParseError

log = logging.getLogger("monitor.ingest.pipeline")  # one logger for the whole pipeline

MatchFn = Callable[[Entry, Sequence[str]], list[Match]]
FEED_MATCH_BUDGET = 20.0  # seconds of matching per poll of one feed


class ParsePool:
    """Parser worker processes, started on the first body to parse."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = default_parse_workers() if workers is None else workers
        self._executor: Executor | None = None
        self._slots = asyncio.Semaphore(2 * max(1, self._workers))

    def close(self, wait: bool = True) -> None:
        """Shut the workers down; wait=False (on SIGTERM) also ends them at once."""
        if self._executor is not None:
            if not wait:
                _end_processes(self._executor)  # a hostile feed's parse must not delay shutdown
            self._executor.shutdown(wait=wait, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """The live worker processes (none before the first parse, or with thread workers)."""
        if not isinstance(self._executor, ProcessPoolExecutor):
            return []
        return list(getattr(self._executor, "_processes", None) or {})

    async def parse(self, result: FetchResult, feed: FeedConfig, limit: float) -> ParsedFeed:
        """Parse in a worker, within the time limit; a crashed or stuck worker is replaced.

        At most two jobs per worker are in the pool at once, so a job's time in
        the pool is its own parse plus at most one other's: the backstop, for a
        worker that no longer answers even its own timer, can be measured from
        submission.
        """
        from monitor.ingest.parse import parse_feed_within  # not imported by a run that parses nothing

        job = functools.partial(parse_feed_within, limit, result.body, dict(result.headers),
                                feed=feed.name, url=result.final_url, language=feed.language)
        backstop = 2 * limit + 5.0 if limit > 0 else None
        async with self._slots:
            for attempt in (1, 2):
                parser = self._pool()
                try:
                    return await asyncio.wait_for(
                        asyncio.get_running_loop().run_in_executor(parser, job), backstop)
                except TimeoutError:
                    self._replace(parser, kill=True)
                    raise ParseError(f"the parser stopped responding on this feed (no result "
                                     f"after {backstop:g} s); its process was replaced") from None
                except BrokenProcessPool:
                    # Another feed's crash or stuck parse may have ended the pool under
                    # this job: it gets one more try on a fresh pool before it is blamed.
                    self._replace(parser)
                    if attempt == 2:
                        raise ParseError("the parser process crashed on this feed") from None
                except ParseError:
                    raise
                except Exception as exc:  # a parser bug must cost this feed one poll, not the cycle
                    log.exception("parser failed feed=%s", feed.name)
                    raise ParseError(f"the parser failed on this feed ({type(exc).__name__})") from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _pool(self) -> Executor:
        if self._executor is None:
            self._executor = _parse_executor(self._workers)
        return self._executor

    def _replace(self, parser: Executor, *, kill: bool = False) -> None:
        """Drop a broken or stuck pool (once, whoever notices first); the next job starts a new one."""
        if kill:
            _end_processes(parser)
        if self._executor is parser:
            self._executor = None
        parser.shutdown(wait=False, cancel_futures=True)


def match_all(match: MatchFn | None, entries: list[Entry],
              feed_tags: Sequence[str]) -> tuple[list[list[Match]], dict[str, str]]:
    """Each entry's matches, and the guids of those given up (over a budget) with why.

    One story may take STORY_BUDGET seconds (match_entry's default), one poll
    FEED_MATCH_BUDGET in all: the single matching thread is shared by every
    feed, so a hostile one must not hold it for minutes.
    """
    from monitor.match.engine import MatchBudgetExceeded

    if match is None:
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
            results.append(match(entry, feed_tags))
        except MatchBudgetExceeded:
            unmatched[entry.guid] = "not matched: the story took too long to match"
            results.append([])
    return results, unmatched


def match_warning(unmatched: dict[str, str], total: int) -> str | None:
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
