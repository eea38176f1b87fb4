"""The durable outbox: alert rows written in the same transaction as their match.

An alert row exists per (story, destination): it names every matched rule
routed to that destination, highest severity first, and moves through
`pending` -> `sent`, or `failed` (retried with backoff) -> `dead` after the
maximum age; alerts of a destination no longer configured become `cancelled`.
`alert_rules` records which rules each alert named: an updated story alerts a
destination again only when it now matches a rule not named there before,
and that message marks the rule as new; while the story's alert is still
held (digest, quiet hours, grouping delay) the new rule joins it instead,
so a digest lists the story once. A copy of a story already alerted to
a destination (same URL, same story on a sister edition, or the same
headline, from another outlet) is stored as `duplicate` and named on the
original as "also reported by"; it is never sent again. Every function here
runs on the store's owner thread (via `StoreThread.call`) and takes the
`Store` first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from monitor.alert.route import Plan, plan_delivery, recipients, retry_due, story_keys
from monitor.models import AlertSettings, AlertView, Destination, Entry, Match, RuleHit
from monitor.store import Store, from_text, to_text

CONSOLE = Destination(name="console", url="console://", safe_url="console (standard output)")
RETRYABLE = ("pending", "failed")


@dataclass(frozen=True)
class _Matched:
    """One rule the story matched, with what routing and the message need."""

    match_id: int
    tags: tuple[str, ...]
    hit: RuleHit


@dataclass
class Planner:
    """Writes the outbox rows of newly inserted matches (called inside save_poll's transaction)."""

    destinations: Sequence[Destination]
    settings: AlertSettings
    tz: str
    descriptions: Mapping[str, str] = field(default_factory=dict)  # rule -> description

    def __post_init__(self) -> None:
        # With no destination configured, alerts go to the console and stay in the database.
        if not self.destinations:
            self.destinations = (CONSOLE,)

    def plan(self, store: Store, *, entry_id: int, entry: Entry,
             matches: Sequence[tuple[int, Match]], is_update: bool, now: datetime) -> int:
        """One alert per destination that has a rule of this poll's matches it was not sent."""
        keys = story_keys(entry.url, entry.title)
        fresh_ids = {match_id for match_id, _ in matches}
        # An update names the story's earlier rules too; a new story has only these.
        story = (_stored_matches(store, entry_id, self.descriptions) if is_update
                 else [self._matched(match_id, match) for match_id, match in matches])
        created = 0
        for destination in self.destinations:
            routed = [m for m in story if recipients(m.tags, (destination,))]
            if not any(m.match_id in fresh_ids for m in routed):
                continue
            alerted = _alerted_rules(store, entry_id, destination.name)
            unsent = [m for m in routed if m.hit.rule not in alerted]
            fresh = [m for m in unsent if m.match_id in fresh_ids]
            if fresh:
                created += self._plan_story(store, destination, entry_id, entry, routed, unsent,
                                            fresh, is_update, keys, now)
        return created

    def _matched(self, match_id: int, match: Match) -> _Matched:
        terms = tuple(dict.fromkeys(hit.term for hit in match.hits))
        return _Matched(match_id, tuple(match.tags), RuleHit(
            rule=match.rule, severity=match.severity, score=match.score, snippet=match.snippet,
            terms=terms, description=self.descriptions.get(match.rule, "")))

    def _plan_story(self, store: Store, destination: Destination, entry_id: int, entry: Entry,
                    routed: Sequence[_Matched], unsent: Sequence[_Matched],
                    fresh: Sequence[_Matched], is_update: bool, keys: Sequence[str],
                    now: datetime) -> int:
        db = store.db
        new_ids = {m.match_id for m in fresh}
        hits = sorted((replace(m.hit, is_new=is_update and m.match_id in new_ids) for m in routed),
                      key=RuleHit.order)
        view = story_view(entry, hits, is_update)
        filed = min(fresh, key=lambda m: m.hit.order())  # never a rule already alerted here
        recent = db.execute(
            "SELECT COUNT(DISTINCT entry_id) FROM alerts WHERE destination = ? AND created >= ? "
            "AND delivery = 'immediate' AND status != 'duplicate' AND kind IN ('match', 'update')",
            [destination.name, to_text(now - timedelta(seconds=destination.rate_window))],
        ).fetchone()[0]
        if destination.rate_limit is None and self.settings.rate_limit:
            # The default flood guard: a burst (say, after a long downtime) becomes a digest.
            destination = replace(destination, rate_limit=self.settings.rate_limit)
        plan = plan_delivery(destination, view.severity, now, self.tz, recent_count=recent,
                             settings=self.settings)
        waiting = db.execute(
            "SELECT id, kind, payload, due_at FROM alerts WHERE entry_id = ? AND destination = ? "
            "AND status = 'pending' AND attempts = 0 AND due_at > ? AND kind IN ('match', 'update') "
            "ORDER BY id DESC LIMIT 1", [entry_id, destination.name, to_text(now)]).fetchone()
        if waiting is not None:
            # Held (a digest, quiet hours, a grouping delay), so not in flight: the new rule
            # joins it. One already due may be being sent right now: it gets a new alert.
            _join_waiting(store, waiting, hits, unsent, plan)
            return 0
        original = _original(store, keys, destination.name, entry_id,
                             now - timedelta(seconds=self.settings.duplicate_window))
        row = db.execute(
            "INSERT INTO alerts (kind, entry_id, match_id, rule, destination, status, delivery, "
            "reason, due_at, created, copy_of, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (entry_id, rule, destination) DO NOTHING RETURNING id",
            ["update" if is_update else "match", entry_id, filed.match_id, filed.hit.rule,
             destination.name, "duplicate" if original else "pending", plan.delivery,
             "copy of an alerted story" if original else plan.reason, to_text(plan.due_at),
             to_text(now), original, _dump(view)],
        ).fetchone()
        if row is None:
            return 0
        db.conn.executemany("INSERT INTO alert_rules (alert_id, match_id, rule) VALUES (?, ?, ?)",
                            [(row[0], m.match_id, m.hit.rule) for m in unsent])
        if original:
            _add_reporter(store, original, view.feed)
        else:
            db.conn.executemany("INSERT INTO alert_keys (key, destination, alert_id, created) "
                                "VALUES (?, ?, ?, ?)",
                                [(key, destination.name, row[0], to_text(now)) for key in keys])
        return 1


def _join_waiting(store: Store, waiting: tuple, hits: Sequence[RuleHit],
                  unsent: Sequence[_Matched], plan: Plan) -> None:
    """Name the story's new rules in its alert that has not gone out yet, which moves
    forward when the new plan is sooner (a critical rule breaks through)."""
    alert_id, kind, payload, due_at = waiting
    view = load_view(payload)
    was_new = {hit.rule for hit in view.all_rules() if hit.is_new}
    joined = [replace(hit, is_new=kind == "update" and (hit.is_new or hit.rule in was_new))
              for hit in hits]
    store.db.execute("UPDATE alerts SET payload = ? WHERE id = ?",
                     [_dump(_with_rules(view, joined)), alert_id])
    if to_text(plan.due_at) < due_at:
        store.db.execute("UPDATE alerts SET due_at = ?, delivery = ?, reason = ? WHERE id = ?",
                         [to_text(plan.due_at), plan.delivery, plan.reason, alert_id])
    store.db.conn.executemany("INSERT INTO alert_rules (alert_id, match_id, rule) VALUES (?, ?, ?)",
                              [(alert_id, m.match_id, m.hit.rule) for m in unsent])


def story_view(entry: Entry, hits: Sequence[RuleHit], is_update: bool) -> AlertView:
    """The message record of one story naming HITS (sorted, most severe first)."""
    top = hits[0]
    return AlertView(rule=top.rule, severity=top.severity, score=top.score, title=entry.title,
                     url=entry.url, feed=entry.feed, published=entry.published,
                     snippet=top.snippet, terms=top.terms, description=top.description,
                     is_update=is_update, rules=tuple(hits))


def _with_rules(view: AlertView, hits: Sequence[RuleHit]) -> AlertView:
    top = hits[0]
    return replace(view, rule=top.rule, severity=top.severity, score=top.score,
                   snippet=top.snippet, terms=top.terms, description=top.description,
                   rules=tuple(hits))


def _stored_matches(store: Store, entry_id: int, descriptions: Mapping[str, str]) -> list[_Matched]:
    """The story's matches not muted as false positives, as the planner reads them."""
    found = []
    for row in store.db.query(
            "SELECT id, rule, score, severity, tags, hits, snippet FROM matches "
            "WHERE entry_id = ? AND muted_at IS NULL ORDER BY id", [entry_id]):
        terms = tuple(dict.fromkeys(hit["term"] for hit in json.loads(row["hits"])))
        found.append(_Matched(row["id"], tuple(json.loads(row["tags"])), RuleHit(
            rule=row["rule"], severity=row["severity"], score=row["score"],
            snippet=row["snippet"], terms=terms, description=descriptions.get(row["rule"], ""))))
    return found


def _alerted_rules(store: Store, entry_id: int, destination: str) -> set[str]:
    """The rules of this story already named to this destination (sent or not)."""
    return {row[0] for row in store.db.execute(
        "SELECT r.rule FROM alert_rules r JOIN alerts a ON a.id = r.alert_id "
        "WHERE a.entry_id = ? AND a.destination = ?", [entry_id, destination])}


def _original(store: Store, keys: Sequence[str], destination: str, entry_id: int,
              since: datetime) -> int | None:
    """The alert this destination already has for the same story from another entry."""
    if not keys:
        return None
    marks = ", ".join("?" * len(keys))
    row = store.db.execute(
        f"SELECT k.alert_id FROM alert_keys k JOIN alerts a ON a.id = k.alert_id "
        f"WHERE k.key IN ({marks}) AND k.destination = ? AND k.created >= ? AND a.entry_id != ? "
        f"ORDER BY k.alert_id LIMIT 1",
        [*keys, destination, to_text(since), entry_id]).fetchone()
    return None if row is None else row[0]


def _add_reporter(store: Store, alert_id: int, feed: str) -> None:
    payload = json.loads(store.db.execute("SELECT payload FROM alerts WHERE id = ?",
                                          [alert_id]).fetchone()[0])
    reporters = payload.setdefault("also_reported_by", [])
    if feed not in reporters and feed != payload.get("feed"):
        reporters.append(feed)
        store.db.execute("UPDATE alerts SET payload = ? WHERE id = ?", [json.dumps(payload), alert_id])


def _dump(view: AlertView) -> str:
    data = asdict(view)
    data["published"] = to_text(view.published)
    return json.dumps(data, ensure_ascii=False)


def load_view(payload: str) -> AlertView:
    """An alert's stored payload back as the record the renderer takes (old per-rule ones too)."""
    data = json.loads(payload)
    data["published"] = from_text(data.get("published"))
    data["terms"] = tuple(data.get("terms", ()))
    data["also_reported_by"] = tuple(data.get("also_reported_by", ()))
    data["rules"] = tuple(RuleHit(**{**hit, "terms": tuple(hit.get("terms", ()))})
                          for hit in data.get("rules", ()))
    return AlertView(**data)


# --------------------------------------------------------------------------
# health alerts
# --------------------------------------------------------------------------


def queue_health(store: Store, destinations: Sequence[Destination], *, feed: str, url: str,
                 event: str, detail: str, now: datetime) -> int:
    """One feed-health alert per admin destination (the caller decides when: once per event)."""
    payload = json.dumps({"feed": feed, "url": url, "event": event, "detail": detail,
                          "at": to_text(now)}, ensure_ascii=False)
    with store.transaction():
        for destination in destinations:
            store.db.execute(
                "INSERT INTO alerts (kind, rule, destination, status, delivery, reason, due_at, "
                "created, payload) VALUES ('health', NULL, ?, 'pending', 'immediate', ?, ?, ?, ?)",
                [destination.name, event, to_text(now), to_text(now), payload])
    return len(destinations)


# --------------------------------------------------------------------------
# what the dispatcher reads and writes
# --------------------------------------------------------------------------


def due_alerts(store: Store, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Alerts whose time has come, oldest first."""
    return list(store.db.query(
        "SELECT id, kind, rule, destination, delivery, attempts, first_attempt_at, payload, "
        "created, possible_duplicate FROM alerts WHERE status IN ('pending', 'failed') AND due_at <= ? "
        "ORDER BY due_at, id LIMIT ?", [to_text(now), limit]))


def next_pending(store: Store) -> datetime | None:
    """When the next not-yet-tried alert falls due (retries of failed ones are not counted)."""
    row = store.db.execute("SELECT MIN(due_at) FROM alerts WHERE status = 'pending'").fetchone()
    return from_text(row[0]) if row and row[0] else None


def mark_sent(store: Store, ids: Sequence[int], now: datetime, *, possible_duplicate: bool = False) -> None:
    with store.transaction():
        store.db.conn.executemany(
            "UPDATE alerts SET status = 'sent', sent_at = ?, last_attempt_at = ?, "
            "attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?), "
            "last_error = NULL, possible_duplicate = MAX(possible_duplicate, ?) WHERE id = ? "
            "AND status != 'muted'",
            [(to_text(now), to_text(now), to_text(now), int(possible_duplicate), i) for i in ids])


def mark_failed(store: Store, ids: Sequence[int], now: datetime, error: str,
                settings: AlertSettings, *, possible_duplicate: bool = False) -> int:
    """Schedule a retry with backoff, or mark dead past the maximum age; returns how many died."""
    dead = 0
    with store.transaction():
        for alert_id in ids:
            attempts, first = store.db.execute(
                "SELECT attempts, first_attempt_at FROM alerts WHERE id = ?", [alert_id]).fetchone()
            first_at = from_text(first) or now
            due = retry_due(attempts + 1, first_at, now, settings)
            dead += due is None
            store.db.execute(
                "UPDATE alerts SET status = ?, due_at = COALESCE(?, due_at), attempts = attempts + 1, "
                "first_attempt_at = ?, last_attempt_at = ?, last_error = ?, "
                "possible_duplicate = MAX(possible_duplicate, ?) WHERE id = ? AND status != 'muted'",
                ["dead" if due is None else "failed", to_text(due), to_text(first_at), to_text(now),
                 error[:500], int(possible_duplicate), alert_id])
    return dead


def cancel(store: Store, ids: Sequence[int], reason: str, now: datetime) -> int:
    """Alerts that can never go out (their destination was removed) stop being retried."""
    with store.transaction():
        store.db.conn.executemany(
            "UPDATE alerts SET status = 'cancelled', last_attempt_at = ?, last_error = ? "
            "WHERE id = ? AND status IN ('pending', 'failed')",
            [(to_text(now), reason[:500], alert_id) for alert_id in ids])
    return len(ids)


def retry(store: Store, ids: Sequence[int] | None, now: datetime) -> int:
    """Failed and dead alerts (all, or these ids) become due now with a fresh age."""
    where = "status IN ('failed', 'dead')"
    args: list[Any] = [to_text(now)]
    if ids is not None:
        where += f" AND id IN ({', '.join('?' * len(ids))})"
        args.extend(ids)
    with store.transaction():
        return store.db.execute(
            f"UPDATE alerts SET status = 'pending', due_at = ?, first_attempt_at = NULL, "
            f"attempts = 0 WHERE {where}", args).rowcount


def list_alerts(store: Store, statuses: Sequence[str] | None = None, limit: int = 200) -> list[dict]:
    """Alerts newest first, one per story and destination, with the story's title, outlet
    and every rule the alert names (`rule` is the top one)."""
    where, args = "", []
    if statuses:
        where = f"WHERE status IN ({', '.join('?' * len(statuses))})"
        args = list(statuses)
    rows = store.db.query(
        f"SELECT id, kind, entry_id, rule, destination, status, delivery, reason, due_at, created, "
        f"attempts, last_error, sent_at, possible_duplicate, copy_of, payload FROM alerts {where} "
        f"ORDER BY id DESC LIMIT ?", [*args, limit])
    out = []
    for row in rows:
        payload = json.loads(row.pop("payload"))
        # A per-rule payload (written before one alert per story) names its one rule.
        hits = payload.get("rules") or ([{"rule": payload.get("rule") or row["rule"],
                                          "is_new": bool(payload.get("is_update"))}]
                                        if row["kind"] != "health" else [])
        row.update(rules=[hit["rule"] for hit in hits],
                   new_rules=[hit["rule"] for hit in hits if hit.get("is_new")])
        if hits:
            row["rule"] = hits[0]["rule"]  # the top rule (the row's own is the one it is filed under)
        row.update(title=payload.get("title") or payload.get("detail"), feed=payload.get("feed"),
                   also_reported_by=payload.get("also_reported_by", []),
                   possible_duplicate=bool(row["possible_duplicate"]))
        out.append(row)
    return out


def counts(store: Store) -> dict[str, int]:
    return dict(store.db.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status").fetchall())


def mute_alerts(store: Store, match_id: int, now: datetime) -> int:
    """A match marked a false positive sends nothing more: its rule leaves the pending and
    failed alerts that name it, and an alert left with no rule becomes 'muted'. Runs
    inside the caller's transaction, which mutes the match itself. Returns the alerts
    muted whole."""
    if not store.db.conn.in_transaction:
        raise RuntimeError("mute_alerts must run inside a store transaction")
    rows = store.db.execute(
        "SELECT a.id, a.payload, r.rule FROM alerts a JOIN alert_rules r ON r.alert_id = a.id "
        "WHERE r.match_id = ? AND a.status IN (?, ?)", [match_id, *RETRYABLE]).fetchall()
    muted = 0
    for alert_id, payload, rule in rows:
        view = load_view(payload)
        left = [hit for hit in view.all_rules() if hit.rule != rule]
        if left:
            store.db.execute("UPDATE alerts SET payload = ? WHERE id = ?",
                             [_dump(_with_rules(view, left)), alert_id])
        else:
            muted += store.db.execute(
                "UPDATE alerts SET status = 'muted', reason = ? WHERE id = ?",
                [f"muted as a false positive at {to_text(now)}", alert_id]).rowcount
    return muted
