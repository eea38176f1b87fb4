"""Every hostile case against the real Fetcher, parse_feed and after_poll, in process.

Each case declares what `monitor feeds list` should show after the daemon
polled it; here the same stages the daemon runs turn one answer into that
outcome, so a case whose declaration and the product disagree fails here
first, in seconds, before the chaos run.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.chaos.hostile import CASES, OK, HostileServer, Outcome, Plan, Served
from monitor.ingest.fetch import Fetcher
from monitor.ingest.parse import MAX_ATTRIBUTES, MAX_TITLE_CHARS, parse_feed
from monitor.ingest.schedule import after_poll
from monitor.models import (
    FeedState,
    FetchOutcome,
    FetchRequest,
    FetchResult,
    FetchSettings,
    ParsedFeed,
    ParseError,
    PollSettings,
)

# Short limits so that the cases that hang cost about a second each.
SETTINGS = FetchSettings(connect_timeout=1.0, read_timeout=1.0, deadline=2.0)


@dataclass
class Polled:
    result: FetchResult
    parsed: ParsedFeed | None
    shown: Outcome  # what `monitor feeds list --json` would show
    error: str | None  # last_error
    served: Served
    seconds: float


def poll(server: HostileServer, case: str, feed: str) -> Polled:
    """One poll of /case/CASE/FEED through the daemon's stages, as `feeds list` would show it."""
    url = server.case_url(case, feed)

    async def fetch() -> FetchResult:
        async with Fetcher(SETTINGS) as fetcher:
            return await fetcher.fetch(FetchRequest(feed=feed, url=url), datetime.now(UTC))

    started = time.monotonic()
    result = asyncio.run(fetch())
    parsed, parse_error = None, None
    if result.outcome is FetchOutcome.OK:
        try:
            parsed = parse_feed(result.body, dict(result.headers), feed=feed, url=result.final_url)
        except ParseError as error:
            parse_error = str(error)
    now = datetime.now(UTC)
    columns = after_poll(FeedState(1, feed, url, "new"), result, now, interval=60,
                         poll=PollSettings(), rng=random.Random(0), parse_error=parse_error).columns
    status = columns["status"]
    retry_after = columns.get("retry_after")
    if status == "error" and retry_after is not None and retry_after > now:
        status = "backing-off"  # as `monitor feeds list` labels a feed waiting out Retry-After
    shown = Outcome(status, columns.get("last_error_kind"))
    served = server.wait_for_final(feed, 1)
    return Polled(result, parsed, shown, columns.get("last_error"), served, time.monotonic() - started)


def text_of(parsed: ParsedFeed) -> str:
    return "\n".join(f"{e.title}\n{e.summary}\n{e.content}" for e in parsed.entries)


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_ends_as_it_declares(hostile, case):
    polled = poll(hostile, case, f"t-{case}")
    assert polled.served is not None and polled.served.case in (case, "healthy")
    assert polled.shown in polled.served.outcomes, polled.error
    assert set(polled.served.outcomes) <= set(CASES[case].expected) | {OK}
    if OK in polled.served.outcomes:
        assert {entry.guid for entry in polled.parsed.entries} == set(polled.served.stories)
    assert polled.seconds < SETTINGS.deadline + 3  # nothing holds a poll past the deadline


def test_timeouts_come_from_the_deadline_and_the_read_timeout(hostile):
    drip = poll(hostile, "slow_drip", "t-drip")
    assert drip.result.error.startswith(f"no complete response within the {SETTINGS.deadline:g} s deadline")
    assert SETTINGS.deadline <= drip.result.duration < SETTINGS.deadline + 1
    silent = poll(hostile, "never_answer", "t-silent")
    assert silent.result.error.startswith("timed out waiting for data")


@pytest.mark.parametrize("case", ["gzip_bomb", "deflate_bomb", "endless_body", "body_100mb"])
def test_oversized_bodies_stop_at_the_cap(hostile, case):
    polled = poll(hostile, case, f"t-cap-{case}")
    assert polled.result.error_kind == "too_large"
    assert polled.result.bytes_read <= SETTINGS.max_body_bytes + 256 * 1024
    assert polled.result.body is None


def test_no_entity_is_expanded_and_nothing_external_is_read(hostile):
    passwd_first_line = Path("/etc/passwd").read_text().splitlines()[0]
    for case in ("xxe_file", "xxe_external_dtd", "entity_blowup", "billion_laughs"):
        text = text_of(poll(hostile, case, f"t-x-{case}").parsed)
        assert "root:" not in text and passwd_first_line not in text
        assert "LEAKED" not in text and "LAUGH" not in text and "BLOWUP" not in text
    assert hostile.leaks == []  # the DTD and entity URLs on this server were never requested


def test_hostile_text_is_stored_capped_deduplicated_and_plain(hostile):
    titles = poll(hostile, "title_1mb", "t-title").parsed.entries
    assert len(titles[0].title) <= MAX_TITLE_CHARS
    dupes = poll(hostile, "duplicate_guids", "t-dup").parsed.entries
    assert [(e.guid, e.title) for e in dupes] == [("dup-0", "Copy 0 of story 0"), ("dup-1", "Copy 1 of story 1")]
    bulk = poll(hostile, "items_5000", "t-bulk").parsed.entries
    assert len({e.guid for e in bulk}) == 5000
    dates = {e.guid: e.published for e in poll(hostile, "odd_dates", "t-dates").parsed.entries}
    assert dates["date-0"].year == 2200 and dates["date-2"] is None
    injected = poll(hostile, "markup_injection", "t-inject").parsed.entries[0]
    assert '<script>alert("x")</script>' in injected.title  # literal text: rendering escapes it


def test_bidi_controls_are_dropped_and_marks_kept(hostile):
    """Regression: an RLO in a headline reversed the rest of the alert subject."""
    titles = [e.title for e in poll(hostile, "bidi_zero_width", "t-bidi").parsed.entries]
    assert titles[0] == "gnp.exe invoice" and titles[4] == "isolated text"
    assert not any(ch in "".join(titles) for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "\u200f" in titles[2] and "\u061c" in titles[3]  # RLM and ALM only nudge direction


def test_attribute_flood_is_refused_quickly(hostile):
    """Regression: 50,000 attributes on one element took minutes of parser CPU."""
    polled = poll(hostile, "attribute_flood", "t-attrs")
    assert polled.shown == Outcome("error", "not_a_feed")
    assert polled.error == f"not a feed: an element with more than {MAX_ATTRIBUTES:,} attributes"
    assert polled.seconds < 2


def test_an_ordinary_element_with_many_attributes_still_parses():
    attributes = " ".join(f'a{n}="1"' for n in range(MAX_ATTRIBUTES))
    body = (f'<rss version="2.0"><channel><title>t</title><item {attributes}><guid>1</guid>'
            f"<title>Many</title></item></channel></rss>").encode()
    assert [e.title for e in parse_feed(body, {}, feed="f", url="http://127.0.0.1/").entries] == ["Many"]


def test_a_301_to_another_host_moves_the_feed(hostile):
    polled = poll(hostile, "moved_other_host", "t-moved")
    assert urlsplit(polled.result.permanent_url).hostname == "127.0.0.3"
    assert urlsplit(polled.result.url).hostname == "127.0.0.2"


def test_plan_is_fixed_by_the_seed_and_freezes_after_the_cycles():
    plan = Plan(seed=3, hostile_share=0.5, cycles=4)
    again = Plan(seed=3, hostile_share=0.5, cycles=4)
    draws = [plan.case_for(f"f{n}", poll) for n in range(40) for poll in range(8)]
    assert draws == [again.case_for(f"f{n}", poll) for n in range(40) for poll in range(8)]
    assert {name for name, _ in draws} - {"healthy"}  # some hostile ones
    for n in range(40):
        tail = {plan.case_for(f"f{n}", poll) for poll in range(4, 30)}
        finals = {case for case in tail if CASES[case[0]].final}
        assert len(finals) == 1  # one final case and content version from the freeze on


def test_the_matching_bomb_matches_fast_with_bounded_hits(hostile):
    """Regression: NEAR compared every pair of 13,000 x 13,000 occurrences (seconds per story)."""
    from bench.chaos.harness import WATCH
    from monitor.match import Matcher, match_entry, parse_watch_text
    from monitor.match.engine import MAX_STORED_HITS

    entry, = poll(hostile, "matching_bomb", "t-bomb").parsed.entries
    matcher = Matcher.compile(parse_watch_text(WATCH, Path("watch.toml")))
    match_entry(matcher, entry)  # warm the word cache, as a running daemon has
    started = time.monotonic()
    match, = match_entry(matcher, entry)
    assert time.monotonic() - started < 0.5
    assert match.rule == "chaos_proximity" and len(match.hits) <= MAX_STORED_HITS


def test_terminal_controls_never_reach_stored_text_or_links(hostile):
    import re

    entries = poll(hostile, "terminal_escapes", "t-esc").parsed.entries
    assert len(entries) == 4
    for entry in entries:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", entry.title + entry.summary + entry.content)
        assert entry.url is None  # a link with ESC in it is no link


def test_credentials_do_not_follow_a_301_to_another_host(hostile):
    from bench.chaos.hostile import CREDENTIAL_HEADER

    url = hostile.case_url("moved_other_host", "t-cred")

    async def fetch() -> FetchResult:
        async with Fetcher(SETTINGS) as fetcher:
            return await fetcher.fetch(FetchRequest(feed="t-cred", url=url, headers={
                CREDENTIAL_HEADER: "127.0.0.2", "Authorization": "Basic YTpi"}), datetime.now(UTC))

    result = asyncio.run(fetch())
    assert result.outcome is FetchOutcome.OK and urlsplit(result.final_url).hostname == "127.0.0.3"
    assert hostile.credential_leaks == []
