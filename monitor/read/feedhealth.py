"""Each configured feed's health at a glance: the config joined with the stored state.

Plain data for the web's Feeds page (the CLI's `feeds list` shows the same
fields); store reads only, through the Store's own queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.masking import mask_text, mask_url
from monitor.models import FeedConfig, FeedState
from monitor.store.database import Store
from monitor.urls import strip_userinfo

SORT_KEYS = ("name", "status", "errors", "entries", "last_success", "next_poll", "silent")


def feed_health(store: Store, feeds: Sequence[FeedConfig], now: datetime,
                not_stored: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per configured feed, newest state first; never a credential of a feed URL
    (user-info stripped, secret query values masked, in the URL and in the error).

    Besides the state, what needs the user as `monitor feeds list` says it: `moved_to`
    (a permanent move held back until confirmed), `match_warning` (stories of the last
    poll left unmatched over the matching budget) and `storage_error` (NOT_STORED: the
    running daemon's feeds whose polls could not be stored, from its lock file)."""
    not_stored = not_stored or {}
    states = {s.name: s for s in store.feed_states()}
    counts = store.entry_counts()
    newest = store.last_story_times()
    rows = []
    for feed in feeds:
        state = states.get(feed.name)
        last_story = newest.get(feed.name)
        rows.append({
            "name": feed.name,
            "url": mask_url(strip_userinfo(state.url if state else feed.url)),
            "status": status_of(state, now),
            "interval": feed.interval,
            "last_success": state.last_success if state else None,
            "last_attempt": state.last_attempt if state else None,
            "last_error": mask_text(state.last_error) if state and state.last_error else None,
            "consecutive_errors": state.consecutive_errors if state else 0,
            "entries": counts.get(feed.name, 0),
            "next_poll": state.next_poll if state else None,
            "last_story": last_story,
            "silent_seconds": max(0.0, (now - last_story).total_seconds()) if last_story else None,
            "moved_to": mask_url(state.moved_to) if state and state.moved_to else None,
            "match_warning": state.match_warning if state else None,
            "storage_error": not_stored.get(feed.name),
        })
    return rows


def status_of(state: FeedState | None, now: datetime) -> str:
    if state is None:
        return "new"
    if state.status == "error" and state.retry_after and state.retry_after > now:
        return "backing-off"
    return state.status


def sort_rows(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """ROWS by KEY; rows without a value go last either way."""
    field = {"errors": "consecutive_errors", "silent": "silent_seconds"}.get(key, key)
    if key not in SORT_KEYS:
        field = "name"
    present = [row for row in rows if row[field] is not None]
    missing = [row for row in rows if row[field] is None]
    present.sort(key=lambda row: (row[field], row["name"]), reverse=descending)
    return present + missing
