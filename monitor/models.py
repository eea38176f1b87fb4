"""Plain records passed between the pipeline's stages.

The data flows one way: config -> scheduler -> fetch -> parse -> match ->
store -> alert dispatch. Each stage takes these records in and gives these
records out, so that each can be tested alone and the orchestrator
(`monitor.ingest.pipeline`) is the only place that knows the order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# --------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedConfig:
    """One feed as the user configured it in feeds.toml."""

    name: str
    url: str
    interval: float  # seconds between polls
    language: str | None = None
    tags: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchSettings:
    """How politely and how defensively feeds are fetched."""

    user_agent: str = "monitor/0.1 (+https://github.com/monitor-feeds/monitor; feed monitoring)"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0  # overall cap for one fetch, body included
    max_body_bytes: int = 10 * 1024 * 1024
    parse_timeout: float = 30.0  # wall time one feed's parse may take; 0 = no limit
    max_redirects: int = 10
    global_limit: int = 16  # concurrent fetches in all
    per_host_limit: int = 2  # concurrent fetches per host:port


@dataclass(frozen=True)
class PollSettings:
    """Scheduling and retention policy."""

    default_interval: float = 600.0
    jitter: float = 0.1  # fraction of the interval, spread both ways
    backlog_window: float = 24 * 3600.0  # 0 = no backlog story counts as new
    max_backoff: float = 6 * 3600.0  # slow-probe ceiling for failing feeds
    retention: float = 90 * 24 * 3600.0  # 0 = keep forever
    fetch_log_keep: int = 50  # fetch log rows kept per feed


# --------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchRequest:
    """What the fetcher needs to know about a feed to fetch it politely."""

    feed: str  # feed name, for error messages
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # sha256 hex of the last parsed body
    headers: Mapping[str, str] = field(default_factory=dict)  # sent to `configured`'s origin only
    configured: str | None = None  # the URL in feeds.toml (url may have moved on); None: url


class FetchOutcome(enum.StrEnum):
    OK = "ok"  # a new body to parse
    NOT_MODIFIED = "not_modified"  # 304
    UNCHANGED = "unchanged"  # 200 with the same body hash as last time
    GONE = "gone"  # 410
    ERROR = "error"


@dataclass(frozen=True)
class FetchResult:
    outcome: FetchOutcome
    url: str  # the URL requested
    final_url: str  # after redirects
    permanent_url: str | None = None  # new URL to store (leading 301/308 run only)
    status: int | None = None
    body: bytes | None = None  # decompressed, only for OK
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercase keys
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after: datetime | None = None  # UTC; from 429/503 Retry-After
    error_kind: str | None = None  # dns, tls, connect, timeout, http, too_large, decode, redirect, protocol
    error: str | None = None  # human readable, never contains secrets
    bytes_read: int = 0  # bytes on the wire
    duration: float = 0.0  # seconds


# --------------------------------------------------------------------------
# parse
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One story, normalised: plain text, UTC times, canonical URL."""

    feed: str
    guid: str
    url: str | None
    title: str
    summary: str = ""
    content: str = ""
    published: datetime | None = None  # aware, UTC
    updated: datetime | None = None  # aware, UTC
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    content_hash: str = ""  # sha256 hex of the text that matters for "changed"


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    language: str | None
    entries: list[Entry]
    warning: str | None = None  # bozo message when the feed was malformed but usable


class ParseError(Exception):
    """The body is not a feed we can read (HTML page, garbage, empty XML...)."""


# --------------------------------------------------------------------------
# match (filled by monitor.match)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    field: str  # title, summary or content
    start: int  # character offsets into the original field text
    end: int
    term: str  # the alias / keyword that matched


@dataclass(frozen=True)
class Match:
    rule: str
    score: float
    severity: str  # info, warning, critical
    tags: tuple[str, ...]
    hits: tuple[Hit, ...]
    snippet: str  # short text with hits marked as [[...]]
    hits_omitted: int = 0  # hits beyond the stored ones (a story repeating a term thousands of times)


# --------------------------------------------------------------------------
# store
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    """Fetch state of one feed as the store keeps it."""

    id: int
    name: str
    url: str
    status: str  # new, ok, error, gone, removed
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    consecutive_errors: int = 0
    next_poll: datetime | None = None
    retry_after: datetime | None = None
    baselined: bool = False  # first successful poll done
    match_warning: str | None = None  # stories of the last poll stored without matching
    moved_to: str | None = None  # a permanent redirect not followed: the feed sends credentials


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
    # When the feed is next due, as the poll stored it (its schedule re-times to it);
    # None for a feed that is gone, or one not in the database.
    next_poll: datetime | None = None


@dataclass(frozen=True)
class StoredEntry:
    """A story a poll inserted or changed, with the matches inserted for it just now:
    what the alert planner needs, handed back by the store instead of the store calling it."""

    entry_id: int
    entry: Entry
    matches: tuple[tuple[int, Match], ...]  # (match id, match) inserted by this poll
    is_update: bool
    alertable: bool  # new inside the backlog window, or an update

    @property
    def may_alert(self) -> bool:
        """Whether the planner is to see it: new matches on a story that may alert."""
        return bool(self.matches) and (self.alertable or self.is_update)


@dataclass(frozen=True)
class StoreResult:
    """The counts of one stored poll, and (not compared) the stories it wrote."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    new_for_alerting: int = 0  # new entries inside the backlog window
    matched: int = 0
    stored: tuple[StoredEntry, ...] = field(default=(), compare=False, repr=False)


# --------------------------------------------------------------------------
# alerts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where alerts go: one apprise URL with its routing and flood-control settings."""

    name: str
    url: str = field(repr=False)  # secrets expanded: never log, print or store it
    safe_url: str = ""  # the same URL with secrets masked (apprise privacy form)
    tags: tuple[str, ...] = ()  # empty = every rule's alerts
    mode: str = "immediate"  # immediate | digest
    digest_every: float | None = None  # seconds, for mode digest
    digest_at: str | None = None  # "HH:MM" in the configured timezone, for mode digest
    quiet_hours: tuple[str, str] | None = None  # ("22:00", "07:00"): held, then one digest
    rate_limit: int | None = None  # at most this many stories per rate_window; beyond -> digest
    rate_window: float = 3600.0


@dataclass(frozen=True)
class AlertSettings:
    """Delivery policy shared by every destination (alerts.toml [settings])."""

    max_age: float = 24 * 3600.0  # a failing alert is retried this long, then marked dead
    retry_base: float = 60.0  # first retry delay; doubles per attempt
    retry_cap: float = 3600.0
    grouping_delay: float = 0.0  # hold immediate alerts this long so copies can merge
    duplicate_window: float = 48 * 3600.0  # same story from several outlets within this window
    send_timeout: float = 30.0  # seconds one send may take before it counts as TIMEOUT
    health_failures: int = 5  # consecutive failed polls that raise a feed-health alert
    health_silence: float = 10.0  # x the feed's interval without a new story -> "silent" alert (0 = off)
    rate_limit: int = 10  # stories per destination per rate_window, unless the destination sets its own (0 = none)


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}  # most severe first


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, len(SEVERITY_RANK))


@dataclass(frozen=True)
class RuleHit:
    """One rule a story matched, as its alert names it."""

    rule: str
    severity: str
    score: float
    snippet: str = ""  # with hits marked [[like this]]
    terms: tuple[str, ...] = ()  # the matched terms
    description: str = ""
    is_new: bool = False  # an update: this rule was not alerted to the destination before

    def order(self) -> tuple[int, float, str]:
        """Sort key: highest severity first, then the best score, then the name."""
        return (severity_rank(self.severity), -self.score, self.rule)


@dataclass(frozen=True)
class AlertView:
    """Everything a message about one matched story shows; all of it is untrusted feed text.

    One alert covers every rule of the story routed to its destination: `rules`,
    highest severity first. The single-rule fields (`rule`, `severity`, `score`,
    `snippet`, `terms`, `description`) are those of the top rule, so a template
    written for one rule per alert keeps working.
    """

    rule: str
    severity: str
    score: float
    title: str
    url: str | None
    feed: str  # the outlet (feed name)
    published: datetime | None
    snippet: str  # with hits marked [[like this]]
    terms: tuple[str, ...] = ()  # the matched terms
    description: str = ""  # the rule's description
    is_update: bool = False  # the story changed and now matches a rule not alerted before
    also_reported_by: tuple[str, ...] = ()  # other outlets that carried the same story
    rules: tuple[RuleHit, ...] = ()  # every matched rule; empty = just the top-level one

    def all_rules(self) -> tuple[RuleHit, ...]:
        """The matched rules, highest severity first (the top-level rule alone for old payloads)."""
        if self.rules:
            return self.rules
        return (RuleHit(rule=self.rule, severity=self.severity, score=self.score,
                        snippet=self.snippet, terms=self.terms, description=self.description,
                        is_new=self.is_update),)


@dataclass(frozen=True)
class Message:
    """One rendered notification in every format a destination might take."""

    subject: str
    text: str
    html: str
    markdown: str
