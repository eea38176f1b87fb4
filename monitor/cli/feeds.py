"""`monitor feeds ...`: the group, the feed health table, and pausing, resuming and resetting feeds.

Pause, resume and reset change a feed's state in the database; the edits of
the feed list in feeds.toml (add, remove, OPML import and export) are in
monitor.cli.feeds_edit, which adds them to this group. Either way a running
daemon on the same database is sent SIGHUP so it re-reads both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from monitor.cli.context import App, iso, tell_daemon
from monitor.cli.output import echo_jsonl, echo_table, emit
from monitor.config.durations import format_duration
from monitor.config.load import FEEDS_FILE, Config
from monitor.edit.feeds import find_name, known_names_hint
from monitor.errors import MonitorError, UsageError
from monitor.masking import mask_text, mask_url
from monitor.models import FeedState
from monitor.store.database import Store
from monitor.store.lock import daemon_lock
from monitor.urls import strip_userinfo


@click.group("feeds")
def feeds_group() -> None:
    """List feed health; add, import, export, remove, pause, resume or reset feeds.

    \b
    Examples:
      monitor feeds list
      monitor feeds add https://kyivindependent.com/
      monitor feeds import subscriptions.opml --dry-run
      monitor feeds pause scmp-china
    """


def feed_rows(app: App) -> list[dict]:
    """One row per configured feed, joined with its stored state when the daemon has seen it."""
    config = app.config()
    states: dict[str, FeedState] = {}
    counts: dict[str, int] = {}
    if app.db_path.exists():
        store = Store.open(app.db_path, readonly=True)
        try:
            states = {s.name: s for s in store.feed_states()}
            counts = store.entry_counts()
        finally:
            store.close()
    not_stored = daemon_lock(app.db_path).feed_problems()
    rows = []
    for feed in config.feeds:
        state = states.get(feed.name)
        rows.append({
            "name": feed.name,
            "url": mask_url(strip_userinfo(state.url if state else feed.url)),
            "status": _status(state),
            "interval": format_duration(feed.interval),
            "last_success": iso(state.last_success) if state else None,
            "last_error": mask_text(state.last_error) if state and state.last_error else None,
            "last_error_kind": state.last_error_kind if state else None,
            "consecutive_errors": state.consecutive_errors if state else 0,
            "entries": counts.get(feed.name, 0),
            "next_poll": iso(state.next_poll) if state else None,
            "retry_after": iso(state.retry_after) if state and state.retry_after else None,
            "moved_to": state.moved_to if state else None,
            "match_warning": state.match_warning if state else None,
            "storage_error": not_stored.get(feed.name),
        })
    return rows


def _status(state: FeedState | None) -> str:
    if state is None:
        return "new"
    now = datetime.now(UTC)
    if state.status == "error" and state.retry_after and state.retry_after > now:
        return "backing-off"
    return state.status


@feeds_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one feed per line.")
@click.pass_obj
def feeds_list(app: App, as_json: bool) -> None:
    """Show every feed's health: status, last success, last error, entries, next poll.

    \b
    Examples:
      monitor feeds list
      monitor feeds list --json | jq 'select(.status=="error")'
    """
    rows = feed_rows(app)
    problem = daemon_lock(app.db_path).problem()
    if problem:  # the states below are the last the database could record
        emit(f"warning: the daemon {problem}; feed states are as of then", err=True)
    if as_json:
        echo_jsonl(rows)
        return
    echo_table(
        ["NAME", "STATUS", "ERRORS", "ENTRIES", "LAST SUCCESS", "NEXT POLL", "URL", "LAST ERROR"],
        [[r["name"], r["status"], r["consecutive_errors"], r["entries"], r["last_success"] or "-",
          r["next_poll"] or "-", r["url"], _last_error(r)] for r in rows],
    )


def _last_error(row: dict) -> str:
    """The error, then what else needs the user: a move to confirm, stories left unmatched."""
    notes = [row["storage_error"] or "", row["last_error"] or ""]
    if row["moved_to"]:
        notes.append(f"moved permanently to {row['moved_to']}: not followed, the feed sends "
                     "credentials; edit its url in feeds.toml to confirm")
    if row["match_warning"]:
        notes.append(row["match_warning"])
    return "; ".join(note for note in notes if note)


# --------------------------------------------------------------------------
# pause, resume, reset: the feed's state in the database
# --------------------------------------------------------------------------


@feeds_group.command("pause")
@click.argument("name")
@click.pass_obj
def feeds_pause(app: App, name: str) -> None:
    """Stop polling a feed until `feeds resume`; it stays in feeds.toml and keeps its stories.

    \b
    Example:
      monitor feeds pause scmp-china
    """
    with _stored_feed(app, name) as (store, state):
        if state.status == "paused":
            emit(f"feed {state.name} is already paused")
            return
        if state.status == "gone":
            emit(f"feed {state.name} is gone (HTTP 410) and is not polled anyway; "
                 f"`monitor feeds reset {state.name}` tries it again")
            return
        store.set_feed_status(state.name, "paused")
    emit(f"paused feed {state.name}: it is not polled until `monitor feeds resume {state.name}`")
    tell_daemon(app)


@feeds_group.command("resume")
@click.argument("name")
@click.pass_obj
def feeds_resume(app: App, name: str) -> None:
    """Poll a paused feed again.

    \b
    Example:
      monitor feeds resume scmp-china
    """
    with _stored_feed(app, name) as (store, state):
        if state.status != "paused":
            hint = f"; `monitor feeds reset {state.name}` clears its errors" if state.status in (
                "error", "gone") else ""
            emit(f"feed {state.name} is not paused (status: {state.status}){hint}")
            return
        store.set_feed_status(state.name, "ok" if state.baselined else "new")
    emit(f"resumed feed {state.name}: it is polled again")
    tell_daemon(app)


@feeds_group.command("reset")
@click.argument("name")
@click.pass_obj
def feeds_reset(app: App, name: str) -> None:
    """Forget a feed's errors, backoff, Retry-After and 410 "gone" mark, so it is polled again soon.

    Stories already seen stay seen (the feed is not baselined again), and a
    paused feed stays paused.

    \b
    Example:
      monitor feeds reset kyiv-independent
    """
    with _stored_feed(app, name) as (store, state):
        store.reset_feed(state.name)
    cleared = [f"{state.consecutive_errors} consecutive errors"]
    if state.retry_after is not None:
        cleared.append("its Retry-After")
    if state.status == "gone":
        cleared.append("the 410 gone mark")
    paused = f"; still paused (`monitor feeds resume {state.name}` to poll it)" if state.status == "paused" else ""
    emit(f"reset feed {state.name}: cleared {', '.join(cleared)} and the backoff; stories already "
         f"seen stay seen{paused}")
    tell_daemon(app)


@contextmanager
def _stored_feed(app: App, name: str) -> Iterator[tuple[Store, FeedState]]:
    """The writable store and the state of the configured feed NAME (exact, else ignoring case).

    A feed added since the daemon last ran has no row yet: the database is
    brought in line with the config first, as the daemon would do.
    """
    config = app.config()
    feed_name = _configured_name(app, config, name)
    store = Store.open(app.db_path)
    try:
        state = store.feed_state(feed_name)
        if state is None:
            store.sync_feeds(config.feeds, datetime.now(UTC))
            state = store.feed_state(feed_name)
        if state is None:
            raise MonitorError(f"feed {feed_name!r} could not be recorded in {app.db_path}")
        yield store, state
    finally:
        store.close()


def _configured_name(app: App, config: Config, name: str) -> str:
    names = [feed.name for feed in config.feeds]
    index = find_name(names, name)
    if index is None:
        raise UsageError(f"no feed named {name!r} in {app.config_dir / FEEDS_FILE}"
                         f"{known_names_hint(names, name)}")
    return names[index]


COMMANDS = [feeds_group]
