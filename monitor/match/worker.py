"""Matching inside the parser processes, so the daemon's own process only fetches and stores.

The daemon's process has one GIL for its event loop, its store thread and
(before) its matching thread: matching 6,000 new stories there kept the first
poll at the speed of one core while the parser processes waited. A
`CompiledWatch` is the pipeline's match function as before, and also carries
its source (the watch text and the cache folder), which pickles cheaply: each
parser process compiles the same watch once (from the word cache of
monitor.match.cache, so without pymorphy3 until a story needs it) and matches
the new and changed stories of each poll there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from monitor.match.engine import Matcher
    from monitor.models import Entry, Match

MatchFn = Callable[["Entry", Sequence[str]], "list[Match]"]


@dataclass(frozen=True)
class WatchSource:
    """What a parser process needs to compile the same watch as the daemon."""

    text: str
    path: Path
    cache_dir: Path | None


class CompiledWatch:
    """A compiled watch as the pipeline's match function, with the source it came from."""

    def __init__(self, matcher: "Matcher", source: WatchSource) -> None:
        self.matcher = matcher
        self.source = source

    def __call__(self, entry: "Entry", feed_tags: Sequence[str]) -> "list[Match]":
        from monitor.match.engine import match_entry

        return match_entry(self.matcher, entry, feed_tags)


def match_entries(match: MatchFn, entries: Sequence["Entry"], feed_tags: Sequence[str],
                  budget: float) -> tuple[list[list["Match"]], dict[str, str]]:
    """Each entry's matches, and the guids of those given up (over a budget) with why.

    One story may take the engine's STORY_BUDGET seconds, one poll BUDGET in all:
    a matching worker is shared by every feed, so a hostile one must not hold it
    for minutes.
    """
    from monitor.match.engine import MatchBudgetExceeded

    results: list[list[Match]] = []
    unmatched: dict[str, str] = {}
    deadline = time.monotonic() + budget
    for entry in entries:
        if time.monotonic() > deadline:
            unmatched[entry.guid] = (f"not matched: this poll's stories took over "
                                     f"{budget:g} s to match")
            results.append([])
            continue
        try:
            results.append(match(entry, feed_tags))
        except MatchBudgetExceeded:
            unmatched[entry.guid] = "not matched: the story took too long to match"
            results.append([])
    return results, unmatched


_compiled: tuple[WatchSource, CompiledWatch] | None = None  # this process's, latest source only


def match_in_worker(source: WatchSource, entries: Sequence["Entry"], feed_tags: Sequence[str],
                    budget: float) -> tuple[list[list["Match"]], dict[str, str]]:
    """match_entries in a parser process, compiling SOURCE on first use (and again after
    a reload changed it)."""
    global _compiled
    if _compiled is None or _compiled[0] != source:
        _compiled = (source, compile_source(source))
    return match_entries(_compiled[1], entries, feed_tags, budget)


def compile_source(source: WatchSource) -> CompiledWatch:
    from monitor.match.cache import compile_watch
    from monitor.match.watch import parse_watch_text

    watch = parse_watch_text(source.text, source.path)
    return CompiledWatch(compile_watch(watch, source.text.encode("utf-8"), source.cache_dir), source)
