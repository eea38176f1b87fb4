"""`monitor feeds list|add|remove`: the feed health table and feed edits."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from monitor.cli.context import App, echo_jsonl, echo_table, iso
from monitor.configedit import add_feed, remove_feed
from monitor.durations import format_duration
from monitor.models import FeedState
from monitor.urls import strip_userinfo
from monitor.store import Store


@click.group("feeds")
def feeds_group() -> None:
    """List feed health, add or remove feeds."""


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
    rows = []
    for feed in config.feeds:
        state = states.get(feed.name)
        rows.append({
            "name": feed.name,
            "url": strip_userinfo(state.url if state else feed.url),
            "status": _status(state),
            "interval": format_duration(feed.interval),
            "last_success": iso(state.last_success) if state else None,
            "last_error": state.last_error if state else None,
            "last_error_kind": state.last_error_kind if state else None,
            "consecutive_errors": state.consecutive_errors if state else 0,
            "entries": counts.get(feed.name, 0),
            "next_poll": iso(state.next_poll) if state else None,
            "retry_after": iso(state.retry_after) if state and state.retry_after else None,
        })
    return rows


def _status(state: FeedState | None) -> str:
    if state is None:
        return "new"
    now = datetime.now(timezone.utc)
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
    if as_json:
        echo_jsonl(rows)
        return
    echo_table(
        ["NAME", "STATUS", "ERRORS", "ENTRIES", "LAST SUCCESS", "NEXT POLL", "URL", "LAST ERROR"],
        [[r["name"], r["status"], r["consecutive_errors"], r["entries"], r["last_success"] or "-",
          r["next_poll"] or "-", r["url"], r["last_error"] or ""] for r in rows],
    )


@feeds_group.command("add")
@click.argument("url")
@click.option("--name", help="Feed name (default: derived from the URL).")
@click.option("--interval", help="Poll interval, e.g. 10m, 1h (default: the config's).")
@click.option("--language", help="Language of the feed's stories, e.g. en, uk, ru.")
@click.option("--tag", "tags", multiple=True, help="A tag for the feed (repeatable).")
@click.pass_obj
def feeds_add(app: App, url: str, name: str | None, interval: str | None,
              language: str | None, tags: tuple[str, ...]) -> None:
    """Add a feed to the config folder's feeds.toml, keeping its comments.

    \b
    Examples:
      monitor feeds add https://kyivindependent.com/rss/ --name kyiv-independent --language en
      monitor feeds add https://example.org/feed --interval 30m --tag china
    """
    feed = add_feed(app.config_dir, url=url, name=name, interval=interval, language=language,
                    tags=tags)
    click.echo(f"added feed {feed.name} ({strip_userinfo(feed.url)}), every "
               f"{format_duration(feed.interval)}")
    _reload_hint()


@feeds_group.command("remove")
@click.argument("name")
@click.pass_obj
def feeds_remove(app: App, name: str) -> None:
    """Remove a feed from feeds.toml; its stored stories are kept.

    \b
    Example:
      monitor feeds remove scmp-china
    """
    remove_feed(app.config_dir, name)
    click.echo(f"removed feed {name}")
    _reload_hint()


def _reload_hint() -> None:
    click.echo("a running daemon picks this up on reload (systemctl reload monitor, or kill -HUP)")


COMMANDS = [feeds_group]
