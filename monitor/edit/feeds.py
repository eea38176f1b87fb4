"""`monitor feeds add`, `feeds import` and `feeds remove`: edit feeds.toml without losing a byte of the user's text.

tomlkit keeps comments on a round trip, but it attaches the comment above a
[[feed]] to the previous table, so deleting a feed through it takes the wrong
comment along. So the edit is a splice of the source text: the new feed is
rendered by tomlkit and appended; a removed feed's lines (with the comment
directly above it) are cut out. Every part of the file not being edited stays
byte-identical, and the result is parsed again and compared with the intended
data before anything is written. Writes are atomic.

The splice helpers (require_array_of_tables, render_tables, append_block,
cut_entry, verify_edit) take the array's name, so `monitor alerts add/remove`
edits alerts.toml's [[destination]] tables with them too.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit
import tomlkit.items

from monitor.config.durations import format_duration, parse_duration
from monitor.config.load import (
    FEEDS_FILE,
    MAX_NAME_LENGTH,
    check_feed_name,
    check_feed_url,
    check_language,
    load_config,
    parse_toml,
    read_config_text,
    redact,
    validate_feeds_text,
)
from monitor.config.paths import atomic_write_text, default_file_text
from monitor.config.tomlpos import table_spans
from monitor.errors import ConfigError, MonitorError, UsageError
from monitor.models import FeedConfig

__all__ = ["add_feed", "add_feeds", "remove_feed", "atomic_write_text", "NewFeed", "AddFeedsReport",
           "check_new_feed_options", "feed_url_key", "find_name", "known_names_hint",
           "name_from_title", "unique_name", "url_slug", "duration_option", "require_array_of_tables",
           "verify_edit", "render_tables", "append_block", "cut_entry"]


@dataclass(frozen=True)
class NewFeed:
    """A feed to add in bulk (from an OPML file); no name means one derived from the URL."""

    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    interval: str | None = None  # a duration such as "30m"; None means the config's default


@dataclass
class AddFeedsReport:
    """What a bulk add did: feeds added, and the ones left out with the reason."""

    added: list[FeedConfig] = field(default_factory=list)
    skipped: list[tuple[NewFeed, str]] = field(default_factory=list)  # already present
    invalid: list[tuple[NewFeed, str]] = field(default_factory=list)  # cannot be polled as given


def add_feed(config_dir: Path, *, url: str, name: str | None = None, interval: str | None = None,
             language: str | None = None, tags: Sequence[str] = ()) -> FeedConfig:
    """Append a [[feed]] to feeds.toml (created from the commented template if missing)."""
    _check_new_feed(url, name, language, tags)
    interval_text = duration_option(interval, "--interval") if interval is not None else None
    config = load_config(config_dir)
    _refuse_duplicates(config.feeds, url, name)
    path = config_dir / FEEDS_FILE
    text = read_config_text(path)
    if text is None:
        text = default_file_text(FEEDS_FILE, no_feeds=True)
    require_array_of_tables(text, path, "feed")
    taken = {f.name.casefold() for f in config.feeds}
    table = _feed_table(name if name is not None else unique_name(url_slug(url), taken), url,
                        interval=interval_text, language=language, tags=tags)
    new_text = append_block(text, render_tables("feed", [table]))
    try:
        feeds = validate_feeds_text(new_text, path, config.poll)
    except ConfigError as error:
        raise UsageError(f"cannot add the feed: {error.message}") from None
    data = parse_toml(text, path)
    verify_edit(new_text, path, {**data, "feed": [*data.get("feed", []), table.unwrap()]})
    atomic_write_text(path, new_text)
    return feeds[-1]


def add_feeds(config_dir: Path, feeds: Sequence[NewFeed], *, dry_run: bool = False) -> AddFeedsReport:
    """Append many feeds in one atomic write, leaving out those already present or unusable.

    A feed is already present when a configured feed (or one added earlier in
    this batch) polls the same URL or has the same name ignoring case; a feed
    with a bad URL, name, language or tag is invalid. Neither stops the others.
    With DRY_RUN the report is the same and nothing is written.
    """
    config = load_config(config_dir)
    path = config_dir / FEEDS_FILE
    text = read_config_text(path)
    if text is None:
        text = default_file_text(FEEDS_FILE, no_feeds=True)
    require_array_of_tables(text, path, "feed")
    report = AddFeedsReport()
    present_urls = {feed_url_key(feed.url): feed.name for feed in config.feeds}
    present_names = {feed.name.casefold(): feed.name for feed in config.feeds}
    tables = []
    for feed in feeds:
        problem = _new_feed_problem(feed)
        if problem:
            report.invalid.append((feed, problem))
            continue
        reason = _already_present(feed, present_urls, present_names)
        if reason:
            report.skipped.append((feed, reason))
            continue
        name = feed.name if feed.name is not None else unique_name(url_slug(feed.url), set(present_names))
        present_urls[feed_url_key(feed.url)] = name
        present_names[name.casefold()] = name
        interval = duration_option(feed.interval, "--interval") if feed.interval is not None else None
        tables.append(_feed_table(name, feed.url, interval=interval, language=feed.language,
                                  tags=feed.tags))
    if not tables:
        return report
    new_text = append_block(text, render_tables("feed", tables))
    try:
        validated = validate_feeds_text(new_text, path, config.poll)
    except ConfigError as error:
        raise UsageError(f"cannot add the feeds: {error.message}") from None
    report.added = list(validated[len(config.feeds):])
    if not dry_run:
        data = parse_toml(text, path)
        verify_edit(new_text, path, {**data, "feed": [*data.get("feed", []), *(t.unwrap() for t in tables)]})
        atomic_write_text(path, new_text)
    return report


def remove_feed(config_dir: Path, name: str) -> None:
    """Cut the named feed (exact name, else ignoring case) and its own comment out of feeds.toml.

    The rest of the file need not be valid: removing a broken feed is a way to fix it.
    """
    path = config_dir / FEEDS_FILE
    text = read_config_text(path)
    if text is None:
        raise UsageError(f"no feed named {name!r}: {path} does not exist")
    data = parse_toml(text, path)
    require_array_of_tables(text, path, "feed")
    entries = data.get("feed", [])
    names = [entry.get("name") for entry in entries]
    index = find_name(names, name)
    if index is None:
        raise UsageError(f"no feed named {name!r} in {path}{known_names_hint(names, name)}")
    atomic_write_text(path, cut_entry(text, path, data, "feed", index))


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------


def check_new_feed_options(url: str, *, name: str | None = None, interval: str | None = None,
                           language: str | None = None, tags: Sequence[str] = ()) -> None:
    """UsageError naming the first bad option, before any network work is spent on the feed."""
    _check_new_feed(url, name, language, tags)
    if interval is not None:
        duration_option(interval, "--interval")


def _check_new_feed(url: str, name: str | None, language: str | None, tags: Sequence[str]) -> None:
    """Command-line values checked up front, so errors name the option rather than a line not yet written."""
    problems = [check_feed_url(url)]
    if name is not None:
        problems.append(check_feed_name(name))
    if language is not None:
        problems.append(check_language(language))
    problems += [f"tag {tag!r} is empty" for tag in tags if not tag.strip()]
    for problem in problems:
        if problem:
            raise UsageError(f"cannot add the feed: {problem}")


def duration_option(value: str, option: str) -> str:
    """The duration VALUE of command-line OPTION (such as --interval) as written to the file: "90m" -> "1h30m"."""
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise UsageError(f"invalid {option}: {error}") from None
    if seconds == 0:
        raise UsageError(f"invalid {option} {value!r}: it must be longer than 0 seconds")
    return format_duration(seconds)


def _new_feed_problem(feed: NewFeed) -> str | None:
    """Why a bulk-added feed cannot be written as given, or None."""
    problems = [check_feed_url(feed.url)]
    if feed.name is not None:
        problems.append(check_feed_name(feed.name))
    if feed.language is not None:
        problems.append(check_language(feed.language))
    problems += [f"tag {tag!r} is empty" for tag in feed.tags if not tag.strip()]
    if feed.interval is not None:
        try:
            duration_option(feed.interval, "--interval")
        except UsageError as error:
            problems.append(str(error))
    return next((problem for problem in problems if problem), None)


def _already_present(feed: NewFeed, urls: dict[str, str], names: dict[str, str]) -> str | None:
    owner = urls.get(feed_url_key(feed.url))
    if owner is not None:
        return f"already present: feed {owner!r} polls this URL"
    if feed.name is not None and feed.name.casefold() in names:
        return f"already present: a feed named {names[feed.name.casefold()]!r} (with another URL)"
    return None


def feed_url_key(url: str) -> str:
    """URL compared up to case of scheme and host, a missing '/' path and the fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path or '/'}?{parts.query}"


def _same_url(first: str, second: str) -> bool:
    return feed_url_key(first) == feed_url_key(second)


def url_slug(url: str) -> str:
    """A name from the URL's host and path: https://www.example.com/rss/ -> example-com-rss."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    return re.sub(r"[^a-z0-9]+", "-", f"{host}{parts.path}".lower()).strip("-")[:MAX_NAME_LENGTH - 4]


def name_from_title(title: str | None, url: str, taken: set[str]) -> str:
    """A short command-line-friendly name from a feed's title ("Kyiv Independent" -> kyiv-independent),
    else from its URL; unique among TAKEN (casefolded names)."""
    slug = re.sub(r"[\W_]+", "-", (title or "").casefold()).strip("-")[:MAX_NAME_LENGTH - 4].strip("-")
    return unique_name(slug or host_slug(url) or url_slug(url), taken)


def host_slug(url: str) -> str:
    """The URL's host as a name ("www.example.org" -> example-org); "" without one."""
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    return re.sub(r"[\W_]+", "-", host.casefold()).strip("-")[:MAX_NAME_LENGTH - 4].strip("-")


def unique_name(base: str, taken: set[str]) -> str:
    """BASE, or BASE-2, BASE-3... whichever is not in TAKEN (casefolded names)."""
    candidate, number = base, 2
    while candidate.casefold() in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _refuse_duplicates(feeds: Sequence[FeedConfig], url: str, name: str | None) -> None:
    for existing in feeds:
        if _same_url(existing.url, url):
            raise UsageError(f"feed {existing.name!r} already polls {redact(url)}")
        if name is not None and existing.name.casefold() == name.casefold():
            raise UsageError(f"a feed named {existing.name!r} already exists (names are compared ignoring case)")


def known_names_hint(names: Sequence[object], wanted: str, plural: str = "feeds") -> str:
    """A hint for an unknown name: the PLURAL (feeds, destinations) there are, or the closest few
    when there are many."""
    known = [name for name in names if isinstance(name, str)]
    if not known:
        return f" (it has no {plural})"
    if len(known) <= 10:
        return f" ({plural}: {', '.join(repr(name) for name in known)})"
    close = difflib.get_close_matches(wanted, known, n=3)
    return f" (did you mean {' or '.join(repr(name) for name in close)}?)" if close else ""


def find_name(names: Sequence[object], wanted: str) -> int | None:
    """Index of the name equal to WANTED, else equal ignoring case, else None."""
    for index, name in enumerate(names):
        if name == wanted:
            return index
    for index, name in enumerate(names):
        if isinstance(name, str) and name.casefold() == wanted.casefold():
            return index
    return None


def require_array_of_tables(text: str, path: Path, array: str) -> None:
    """The splice works on [[ARRAY]] tables; an inline `ARRAY = [...]` array is left to the user."""
    try:
        document = tomlkit.parse(text)
    except Exception as error:  # tomlkit raises its own parse error types, all user-fixable
        raise ConfigError(f"cannot edit the file: {error}", path=path) from None
    entries = document.get(array)
    if entries is not None and not isinstance(entries, tomlkit.items.AoT):
        found = f"an inline array `{array} = [...]`" if isinstance(entries, list) else f"a single [{array}] table"
        raise UsageError(f"{path} has {found}, not [[{array}]] tables: write each {array} as a [[{array}]] "
                         "table, or edit the file by hand")


def verify_edit(new_text: str, path: Path, expected: dict[str, Any]) -> None:
    """Refuse to write unless the edited text means exactly the intended data."""
    try:
        actual = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError:
        actual = None
    if actual != expected:
        raise MonitorError(f"could not edit {path} safely (its layout is unusual); "
                           "the file was not changed: please edit it by hand")


# --------------------------------------------------------------------------
# text splicing
# --------------------------------------------------------------------------


def _feed_table(name: str, url: str, *, interval: str | None = None, language: str | None = None,
                tags: Sequence[str] = ()) -> tomlkit.items.Table:
    table = tomlkit.table()
    table.add("name", name)
    table.add("url", url)
    for key, value in (("interval", interval), ("language", language), ("tags", list(tags))):
        if value:
            table.add(key, value)
    return table


def render_tables(array: str, tables: Sequence[tomlkit.items.Table]) -> str:
    """TABLES as TOML text: one [[ARRAY]] table each."""
    entries = tomlkit.aot()
    for table in tables:
        entries.append(table)
    document = tomlkit.document()
    document.add(array, entries)
    return tomlkit.dumps(document)


def append_block(text: str, block: str) -> str:
    """TEXT with BLOCK at the end, one blank line between; TEXT itself is kept as is."""
    if not text.strip():
        return block
    separator = "" if text.endswith("\n") else "\n"
    if not (text + separator).endswith("\n\n"):
        separator += "\n"
    return text + separator + block


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def cut_entry(text: str, path: Path, data: dict[str, Any], array: str, index: int) -> str:
    """TEXT (read from PATH, meaning DATA) without the INDEX-th [[ARRAY]] table; MonitorError unless
    the result means DATA without that entry."""
    new_text = _cut_table(text, array, index)
    entries = data.get(array, [])
    remaining = entries[:index] + entries[index + 1:]
    expected = {key: value for key, value in data.items() if key != array}
    verify_edit(new_text, path, {**expected, array: remaining} if remaining else expected)
    return new_text


def _cut_table(text: str, array: str, index: int) -> str:
    """TEXT without the INDEX-th [[ARRAY]] table, its sub-tables and the comment lines right above it."""
    spans = table_spans(text)
    own = [span for span in spans if span.path[:2] == (array, index)]
    before = [span for span in spans if span.header_line < own[0].header_line]
    lines = text.splitlines(keepends=True)
    floor = before[-1].last_line if before else 0  # never climb into the previous table's values
    start = own[0].header_line - 1  # 0-based
    while start > floor and _is_comment(lines[start - 1]):
        start -= 1
    end = max(span.last_line for span in own)  # 0-based index of the first line after the table
    while end < len(lines) and not lines[end].strip():
        end += 1
    if end == len(lines):  # the last table: drop the blank lines that separated it instead
        while start > floor and not lines[start - 1].strip():
            start -= 1
    return "".join(lines[:start] + lines[end:])
