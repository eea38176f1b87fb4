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
`Store` first; the tables' SQL is in monitor.store.outbox, and the dispatcher's
plain reads and writes (due alerts, sent, cancelled, retried) are called there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

from monitor.alert.route import Plan, plan_delivery, recipients, retry_due
from monitor.models import AlertSettings, AlertView, Destination, Entry, Match, RuleHit
from monitor.store import outbox as rows
from monitor.store.database import Store
from monitor.store.values import from_text, to_text
from monitor.stories import story_keys

CONSOLE = Destination(name="console", url="console://", safe_url="console (standard output)")


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
            alerted = rows.alerted_rules(store, entry_id, destination.name)
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
        new_ids = {m.match_id for m in fresh}
        hits = sorted((replace(m.hit, is_new=is_update and m.match_id in new_ids) for m in routed),
                      key=RuleHit.order)
        view = story_view(entry, hits, is_update)
        filed = min(fresh, key=lambda m: m.hit.order())  # never a rule already alerted here
        recent = rows.recent_immediate_stories(store, destination.name,
                                               now - timedelta(seconds=destination.rate_window))
        if destination.rate_limit is None and self.settings.rate_limit:
            # The default flood guard: a burst (say, after a long downtime) becomes a digest.
            destination = replace(destination, rate_limit=self.settings.rate_limit)
        plan = plan_delivery(destination, view.severity, now, self.tz, recent_count=recent,
                             settings=self.settings)
        waiting = rows.held_alert(store, entry_id, destination.name, now)
        if waiting is not None:
            # Held (a digest, quiet hours, a grouping delay), so not in flight: the new rule
            # joins it. One already due may be being sent right now: it gets a new alert.
            _join_waiting(store, waiting, hits, unsent, plan)
            return 0
        original = rows.original_alert(store, keys, destination.name, entry_id,
                                       now - timedelta(seconds=self.settings.duplicate_window))
        alert_id = rows.insert_alert(
            store, kind="update" if is_update else "match", entry_id=entry_id, match_id=filed.match_id,
            rule=filed.hit.rule, destination=destination.name,
            status="duplicate" if original else "pending", delivery=plan.delivery,
            reason="copy of an alerted story" if original else plan.reason, due_at=plan.due_at,
            created=now, copy_of=original, payload=_dump(view))
        if alert_id is None:
            return 0
        rows.add_alert_rules(store, alert_id, [(m.match_id, m.hit.rule) for m in unsent])
        if original:
            _add_reporter(store, original, view.feed)
        else:
            rows.add_alert_keys(store, alert_id, destination.name, keys, now)
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
    rows.set_payload(store, alert_id, _dump(_with_rules(view, joined)))
    if to_text(plan.due_at) < due_at:
        rows.reschedule(store, alert_id, plan.due_at, plan.delivery, plan.reason)
    rows.add_alert_rules(store, alert_id, [(m.match_id, m.hit.rule) for m in unsent])


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
    for row in rows.story_matches(store, entry_id):
        terms = tuple(dict.fromkeys(hit["term"] for hit in row["hits"]))
        found.append(_Matched(row["id"], tuple(row["tags"]), RuleHit(
            rule=row["rule"], severity=row["severity"], score=row["score"],
            snippet=row["snippet"], terms=terms, description=descriptions.get(row["rule"], ""))))
    return found


def _add_reporter(store: Store, alert_id: int, feed: str) -> None:
    payload = json.loads(rows.alert_payload(store, alert_id))
    reporters = payload.setdefault("also_reported_by", [])
    if feed not in reporters and feed != payload.get("feed"):
        reporters.append(feed)
        rows.set_payload(store, alert_id, json.dumps(payload))


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
    rows.insert_health(store, [destination.name for destination in destinations], event, payload, now)
    return len(destinations)


# --------------------------------------------------------------------------
# what the dispatcher writes (the rest of its reads and writes: monitor.store.outbox)
# --------------------------------------------------------------------------


def mark_failed(store: Store, ids: Sequence[int], now: datetime, error: str,
                settings: AlertSettings, *, possible_duplicate: bool = False) -> int:
    """Schedule a retry with backoff, or mark dead past the maximum age; returns how many died."""
    dead = 0
    with store.transaction():
        for alert_id in ids:
            tried, first = rows.attempts(store, alert_id)
            first_at = first or now
            due = retry_due(tried + 1, first_at, now, settings)
            dead += due is None
            rows.record_failure(store, alert_id, due=due, first_attempt=first_at, now=now, error=error,
                                possible_duplicate=possible_duplicate)
    return dead


def list_alerts(store: Store, statuses: Sequence[str] | None = None, limit: int = 200) -> list[dict]:
    """Alerts newest first, one per story and destination, with the story's title, outlet
    and every rule the alert names (`rule` is the top one)."""
    out = []
    for row in rows.alert_rows(store, statuses, limit):
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


def mute_alerts(store: Store, match_id: int, now: datetime) -> int:
    """A match marked a false positive sends nothing more: its rule leaves the pending and
    failed alerts that name it, and an alert left with no rule becomes 'muted'. Runs
    inside the caller's transaction, which mutes the match itself. Returns the alerts
    muted whole."""
    if not store.in_transaction:
        raise RuntimeError("mute_alerts must run inside a store transaction")
    muted = 0
    for alert_id, payload, rule in rows.open_alerts_naming(store, match_id):
        view = load_view(payload)
        left = [hit for hit in view.all_rules() if hit.rule != rule]
        if left:
            rows.set_payload(store, alert_id, _dump(_with_rules(view, left)))
        else:
            muted += rows.mute_alert(store, alert_id, f"muted as a false positive at {to_text(now)}")
    return muted
