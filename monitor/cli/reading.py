"""`monitor search|matches|show|mute|report`: reading back what was found, without SQL.

Listings print a block per item (hits marked [[like this]], in colour on a
terminal) or, with --json, JSON Lines. Story IDs are the ones `monitor show`
and `monitor mute` take.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.context import App
from monitor.cli.output import HIT_CLOSE, HIT_OPEN, bold, echo_jsonl, emit, feed_text, is_tty, terminal_width
from monitor.cli.stories import parse_since_option
from monitor.config.paths import DatabaseLocation, DatabaseURL
from monitor.errors import MonitorError, UsageError
from monitor.store.database import Store
from monitor.stories import repeats_summary

_MARKED = re.compile(r"\[\[(.+?)\]\]", re.S)
_OPEN, _CLOSE = HIT_OPEN, HIT_CLOSE  # hit markers that survive wrapping, styled as they are printed
_ANNOUNCE_INDEXING = 2000  # stories to index before a search that deserve a word of warning


# --------------------------------------------------------------------------
# opening the database
# --------------------------------------------------------------------------


def _require_db(path: DatabaseLocation) -> None:
    if not path.exists():
        raise MonitorError(f"no database at {path} yet: run `monitor run --once` first")


def _writable(path: DatabaseLocation) -> bool:
    """Whether this user may write the search index (a PostgreSQL server says so when it is opened)."""
    if isinstance(path, DatabaseURL):
        return True
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_for_reading(path: Path) -> Store:
    """Read-only, unless the database still needs this version's upgrade and may be written."""
    _require_db(path)
    try:
        return Store.open(path, readonly=True)
    except MonitorError:
        if not _writable(path):
            raise
        return Store.open(path)


def _open_for_writing(path: Path) -> Store:
    _require_db(path)
    return Store.open(path)


# --------------------------------------------------------------------------
# showing hits
# --------------------------------------------------------------------------


def marked(snippet: str) -> str:
    """A stored snippet ([[hits]] marked) with its hits as markers."""
    return _MARKED.sub(lambda m: _OPEN + m.group(1) + _CLOSE, feed_text(snippet))


def _echo_indented(text: str) -> None:
    """TEXT indented by four; on a terminal wrapped to its width so no word is split."""
    if not is_tty():
        emit(f"    {text}")
        return
    emit(textwrap.fill(" ".join(text.split()), width=max(terminal_width() - 1, 40),
                       initial_indent="    ", subsequent_indent="    ",
                       break_long_words=True, break_on_hyphens=False))


def _echo_title_and_snippet(title: str, snippet: str) -> None:
    """The snippet, after the title unless the snippet already starts with it."""
    title = feed_text(title)
    if not _MARKED.sub(r"\1", snippet).startswith(title.strip()):
        _echo_indented(title)
    _echo_indented(marked(snippet))


def _with_marks(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """TEXT with markers around the character spans (overlapping ones merged)."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if start < 0 or end > len(text) or start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out += [text[position:start], _OPEN, text[start:end], _CLOSE]
        position = end
    out.append(text[position:])
    return "".join(out)


def _width() -> int:
    return min(shutil.get_terminal_size((80, 24)).columns, 100) if is_tty() else 80


def _wrapped(text: str, indent: str = "") -> str:
    """Paragraphs kept, each wrapped to the output's width."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    width = _width()
    return "\n\n".join(textwrap.fill(p, width=width, initial_indent=indent, subsequent_indent=indent,
                                     break_long_words=False, break_on_hyphens=False)
                       for p in paragraphs)


def _bold(text: str) -> str:
    return bold(text)


def _since(value: str | None) -> datetime | None:
    return parse_since_option(value) if value else None


# --------------------------------------------------------------------------
# monitor search
# --------------------------------------------------------------------------


@click.command("search")
@click.argument("query")
@click.option("--since", help="Only stories first seen since: a duration (7d, 12h) or an ISO date.")
@click.option("--feed", help="Only this feed (its name).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most N stories.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one story per line, with its hits.")
@click.pass_obj
def search_command(app: App, query: str, since: str | None, feed: str | None, limit: int,
                   as_json: bool) -> None:
    """Search stored stories, newest first; exit 1 when nothing is found.

    QUERY is written like a watch rule's query. Words are ANDed and found in
    any form: "Китай" finds Китаю and Китаєм, "drone" finds drones, "Russia"
    finds Russia's; accents on Latin letters are ignored. "quoted words" are
    a phrase, in order; OR, NOT, ( ) and word* work as in watch.toml, as do
    a NEAR/5 b, title:word, and @entity / #group from watch.toml. Operators
    are UPPER CASE.

    The search index is brought up to date first (new and changed stories);
    when the database is read-only to you, the existing index is searched.

    \b
    Examples:
      monitor search Китай
      monitor search '"drone parts" Russia' --since 7d
      monitor search 'Beijing OR China NOT Taiwan' --feed kyiv-independent
      monitor search '@china #drones' --json
    """
    from monitor.read.search import index_pending, needs_watch, parse_search, search
    from monitor.store.search import pending_count

    since_at = _since(since)
    watch = None
    if needs_watch(parse_search(query)):
        from monitor.ingest.prepare import load_watch_for

        watch = load_watch_for(app.config())
    _require_db(app.db_path)
    writable = _writable(app.db_path)
    store = Store.open(app.db_path, readonly=not writable)
    try:
        if writable:
            pending = pending_count(store)
            if pending >= _ANNOUNCE_INDEXING:
                emit(f"monitor: indexing {pending} stories for search (once; later searches "
                     "only index what is new)", err=True)
            try:
                index_pending(store)
            except sqlite3.OperationalError as exc:
                emit(f"monitor: warning: could not update the search index ({exc}); "
                     "recent stories may be missing", err=True)
        elif pending_count(store):
            emit(f"monitor: warning: {app.db_path} is read-only to you and the search index "
                 "is behind: recent or changed stories may be missing", err=True)
        results = search(store, query, since=since_at, feed=feed, limit=limit, watch=watch)
    finally:
        store.close()
    if as_json:
        echo_jsonl(results)
    elif not results:
        count = _stored_count(app.db_path, feed)
        emit(f"no matches ({count} {'story' if count == 1 else 'stories'} searched)", err=True)
    else:
        for result in results:
            emit(_bold(f"{result['id']}  {result['first_seen']}  {result['feed']}"))
            _echo_title_and_snippet(result["title"], result["snippet"])
            if result["url"]:
                emit(f"    {result['url']}")
    sys.exit(0 if results else 1)


def _stored_count(path: Path, feed: str | None) -> int:
    store = Store.open(path, readonly=True)
    try:
        counts = store.entry_counts()
    finally:
        store.close()
    return counts.get(feed, 0) if feed else sum(counts.values())


# --------------------------------------------------------------------------
# monitor matches
# --------------------------------------------------------------------------


def _match_json(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "match_id", "rule", "score", "severity", "tags", "feed", "title", "url",
            "published", "first_seen", "created", "snippet", "hits", "muted", "muted_at",
            "mute_reason")
    return {key: row[key] for key in keys}


@click.command("matches")
@click.option("--since", default="1d", show_default=True,
              help="Matches recorded since: a duration (1d, 12h) or an ISO date.")
@click.option("--rule", help="Only this rule's matches.")
@click.option("--feed", help="Only stories of this feed (its name).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N matches.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines, one match per line, with its hits (field, start, end, term).")
@click.pass_obj
def matches_command(app: App, since: str, rule: str | None, feed: str | None, limit: int | None,
                    as_json: bool) -> None:
    """List stored matches, newest first, with the snippet that explains each.

    The first column is the story ID, for `monitor show ID` and `monitor
    mute ID`. Exit 1 when there is no match in the period.

    \b
    Examples:
      monitor matches
      monitor matches --since 7d --rule china_sanctions
      monitor matches --feed kyiv-independent --json
    """
    from monitor.read.search import list_matches
    from monitor.store.matches import stored_rule_names

    since_at = _since(since)
    store = _open_for_reading(app.db_path)
    try:
        if rule is not None:
            _check_rule_name(app, rule, stored_rule_names(store))
        rows = list_matches(store, since=since_at, rule=rule, feed=feed, limit=limit)
    finally:
        store.close()
    if as_json:
        echo_jsonl(_match_json(row) for row in rows)
    elif not rows:
        emit(f"no matches since {since_at:%Y-%m-%d %H:%M}Z"
             f"{f' of rule {rule}' if rule else ''}{f' in feed {feed}' if feed else ''}", err=True)
    else:
        for row in rows:
            muted = f"  muted{': ' + row['mute_reason'] if row['mute_reason'] else ''}" if row["muted"] else ""
            emit(_bold(f"{row['id']}  {row['created']}  {row['rule']}  {row['severity']}  "
                       f"score {row['score']:g}  {row['feed']}") + muted)
            _echo_title_and_snippet(row["title"], row["snippet"])
            if row["url"]:
                emit(f"    {row['url']}")
    sys.exit(0 if rows else 1)


def _check_rule_name(app: App, rule: str, stored: list[str]) -> None:
    """A rule neither in watch.toml nor in the database is a typo: say which rules exist."""
    from monitor.errors import ConfigError
    from monitor.ingest.prepare import load_watch_for

    try:
        configured = [r.name for r in load_watch_for(app.config()).rules]
    except ConfigError:
        configured = []
    known = sorted(set(configured) | set(stored))
    if rule not in known:
        raise UsageError(f"--rule: no rule named {rule!r}; the rules are: {', '.join(known) or 'none'}")


# --------------------------------------------------------------------------
# monitor show
# --------------------------------------------------------------------------


@click.command("show")
@click.argument("story_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="The story as one JSON object.")
@click.pass_obj
def show_command(app: App, story_id: int, as_json: bool) -> None:
    """Show one story: its text with the hits marked, its matches and its alerts.

    \b
    Examples:
      monitor show 42
      monitor show 42 --json
    """
    from monitor.read.search import get_story

    store = _open_for_reading(app.db_path)
    try:
        story = get_story(store, story_id)
    finally:
        store.close()
    if story is None:
        raise MonitorError(f"no story with ID {story_id} (see `monitor stories` or `monitor matches`)")
    if as_json:
        story["matches"] = [_match_json(row) | {"current": row["current"]} for row in story["matches"]]
        echo_jsonl([story])
        return
    _print_story(story)


def _spans(story: dict[str, Any], field: str) -> list[tuple[int, int]]:
    """Hit spans of FIELD from matches recorded on the story's current text."""
    return [(hit["start"], hit["end"]) for match in story["matches"] if match["current"]
            for hit in match["hits"] if hit["field"] == field]


def _print_story(story: dict[str, Any]) -> None:
    emit(_bold(f"Story {story['id']} · {story['feed']}"))
    emit(_with_marks(story["title"], _spans(story, "title")))
    if story["url"]:
        emit(story["url"])
    times = [f"published {story['published']}" if story["published"] else "no publication date",
             f"first seen {story['first_seen']}"]
    if story["version"] > 1:
        times.append(f"changed {story['version'] - 1} time(s), last {story['updated_at']}")
    if story["language"]:
        times.append(f"language {story['language']}")
    emit(" · ".join(times))
    for field in ("summary", "content"):
        text = story[field] or ""
        if text.strip() and not (field == "content" and repeats_summary(story["summary"], text)):
            emit("")
            emit(_wrapped(_with_marks(text, _spans(story, field))))
    emit("")
    emit(_bold(f"Matches ({len(story['matches'])})"))
    for match in story["matches"]:
        _print_match(story, match)
    emit("")
    emit(_bold(f"Alerts ({len(story['alerts'])})"))
    for alert in story["alerts"]:
        emit("  " + _alert_line(alert))


def _print_match(story: dict[str, Any], match: dict[str, Any]) -> None:
    tags = f" · tags: {', '.join(match['tags'])}" if match["tags"] else ""
    emit(f"  {match['rule']} · {match['severity']} · score {match['score']:g}{tags} · "
         f"recorded {match['created']}")
    if match["muted"]:
        reason = f": {match['mute_reason']}" if match["mute_reason"] else ""
        emit(f"    muted {match['muted_at']}{reason}")
    emit(f"    {marked(match['snippet'])}")
    if not match["current"]:
        emit(f"    (matched version {match['entry_version']}; the story has changed since)")
    for hit in match["hits"]:
        text = story.get(hit["field"]) or ""
        quoted = f" {text[hit['start']:hit['end']]!r}" if match["current"] else ""
        emit(f"    {hit['field']} {hit['start']}-{hit['end']}{quoted} <- {hit['term']}")


def _alert_line(alert: dict[str, Any]) -> str:
    parts = [f"#{alert['id']}", alert["destination"], alert["status"]]
    if alert["status"] == "sent":
        parts.append(alert["sent_at"] or "")
    elif alert["status"] in ("pending", "failed"):
        parts.append(f"due {alert['due_at']}")
    parts.append(alert.get("rules") or alert["rule"] or alert["kind"])
    detail = [alert["delivery"], f"{alert['attempts']} attempt{'s' if alert['attempts'] != 1 else ''}"]
    if alert["copy_of"]:
        detail.append(f"copy of alert #{alert['copy_of']}")
    if alert["possible_duplicate"]:
        detail.append("possibly delivered twice")
    line = "  ".join(parts) + f"  ({', '.join(detail)})"
    if alert["last_error"] and alert["status"] != "sent":
        line += f"\n    last error: {alert['last_error']}"
    return line


# --------------------------------------------------------------------------
# monitor report
# --------------------------------------------------------------------------


@click.command("report")
@click.option("--since", default="7d", show_default=True,
              help="Matches recorded since: a duration (7d, 1d) or an ISO date.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many top stories to list.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines, each with a kind: summary, day, rule, outlet, story.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with a chart to FILE.")
@click.pass_obj
def report_command(app: App, since: str, top: int, as_json: bool, html_file: Path | None) -> None:
    """What was caught: matches per day, per rule and per outlet, and the top
    stories (copies from several outlets counted as one, ranked by outlets,
    then score). Days are in the config's time zone; muted matches are not
    counted.

    \b
    Examples:
      monitor report
      monitor report --since 1d
      monitor report --since 30d --html week.html
      monitor report --json
    """
    from monitor.config.paths import atomic_write_text
    from monitor.read.report import build_report, render_html, render_text, report_rows

    since_at = parse_since_option(since)
    if since_at > datetime.now(UTC):
        raise UsageError(f"--since {since} is in the future: a report covers a period up to now")
    tz = app.config().timezone
    store = _open_for_reading(app.db_path)
    try:
        report = build_report(store, since=since_at, now=datetime.now(UTC), tz=tz, top=top)
    finally:
        store.close()
    if html_file is not None:
        try:
            # 0644: a report holds no secret, and the user's group may read it like any page
            atomic_write_text(html_file, render_html(report), mode=0o644)
        except OSError as exc:
            raise MonitorError(f"cannot write {html_file}: {exc.strerror or exc}") from None
    if as_json:
        echo_jsonl(report_rows(report))
    else:
        emit(render_text(report), nl=False)
        if html_file is not None:
            emit(f"\nwrote {html_file}")


COMMANDS: Sequence[click.Command] = [search_command, matches_command, show_command, report_command]
