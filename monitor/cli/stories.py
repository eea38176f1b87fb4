"""`monitor stories`: what was stored, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from monitor.cli.context import App, echo_jsonl, echo_table
from monitor.config.durations import parse_since
from monitor.errors import MonitorError, UsageError
from monitor.store.database import Store


@click.command("stories")
@click.option("--since", help="Only stories first seen since: a duration (1d, 12h) or an ISO date.")
@click.option("--feed", help="Only this feed (its name).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N stories.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one story per line.")
@click.pass_obj
def stories_command(app: App, since: str | None, feed: str | None, limit: int | None,
                    as_json: bool) -> None:
    """List stored stories, newest first.

    \b
    Examples:
      monitor stories --since 1d
      monitor stories --feed kyiv-independent --json
      monitor stories --since 2026-11-01 --limit 20
    """
    since_at = parse_since_option(since) if since else None
    if not app.db_path.exists():
        raise MonitorError(f"no database at {app.db_path} yet: run `monitor run --once` first")
    store = Store.open(app.db_path, readonly=True)
    try:
        rows = store.list_stories(since=since_at, feed=feed, limit=limit)
    finally:
        store.close()
    if as_json:
        echo_jsonl({k: row.get(k) for k in ("id", "feed", "guid", "url", "title", "published",
                                              "first_seen", "language")} for row in rows)
        return
    echo_table(["ID", "FIRST SEEN", "FEED", "TITLE"],
               [[r["id"], r["first_seen"], r["feed"], _clip(r["title"], 90)] for r in rows])


def parse_since_option(text: str) -> datetime:
    """--since as a moment; a bad value is a usage error (exit 2) naming the option."""
    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None


def _clip(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


COMMANDS = [stories_command]
