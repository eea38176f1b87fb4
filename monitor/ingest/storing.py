"""Storing a poll together with its alerts: the store writes, the planner decides.

The store knows nothing of alerting; the outbox's rows are still written in
the same transaction as the stories and matches they are about, so a match is
never stored without its alerts, and a failed plan stores nothing of the poll.
Runs on the store's owner thread (through `StoreThread.call`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from monitor.models import Entry, Match, StoreResult
from monitor.store.database import Store


class AlertPlanner(Protocol):
    """Writes the outbox rows of new matches (monitor.alert.outbox.Planner)."""

    def plan(self, store: Store, *, entry_id: int, entry: Entry,
             matches: Sequence[tuple[int, Match]], is_update: bool, now: datetime) -> int: ...


def store_poll(store: Store, name: str, items: Sequence[tuple[Entry, str, bool, Sequence[Match]]],
               now: datetime, state: dict, log: dict, *, keep: int,
               planner: AlertPlanner | None = None,
               unmatched: dict[str, str] | None = None) -> StoreResult:
    """`Store.save_poll`, then PLANNER's alerts for every story with new matches that may
    alert, all in ONE transaction (the arguments are save_poll's)."""
    with store.transaction():
        saved = store.save_poll(name, items, now, state, log, keep=keep, unmatched=unmatched)
        if planner is not None:
            for stored in saved.stored:
                if stored.may_alert:
                    planner.plan(store, entry_id=stored.entry_id, entry=stored.entry,
                                 matches=stored.matches, is_update=stored.is_update, now=now)
    return saved
