"""What a set of rules would match over the stored stories: `monitor rules backtest`
and the web's watch editor, which compares an edit with the rules in force.

Reads stories through the Store's own queries; matching is the real matcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.store.database import Store

MatchRules = Callable[[dict[str, Any]], set[str]]


def rules_matcher(matcher, tags_by_feed: Mapping[str, Sequence[str]]) -> MatchRules:
    """A function from a stored story to the names of the rules MATCHER finds in it."""
    def rules(row: dict[str, Any]) -> set[str]:
        return {m.rule for m in matcher.match(
            title=row["title"] or "", summary=row["summary"] or "", content=row["content"] or "",
            language=row["language"], feed=row["feed"], feed_tags=tuple(tags_by_feed.get(row["feed"], ())))}
    return rules


def compare(store: Store, before: MatchRules | None, after: MatchRules, *,
            since: datetime | None) -> dict[str, Any]:
    """Stories first seen since SINCE under AFTER's rules, against BEFORE's (or, when
    BEFORE is None, against what was recorded as matching then).

    Changes are "new" (AFTER matches, BEFORE did not) and "gone"; each false
    positive a person marked says whether AFTER still matches it."""
    from monitor.read.search import muted_matches

    then = store.matched_rules(since=since) if before is None else {}
    changes: list[dict[str, Any]] = []
    scanned = matched_now = 0
    now_by_entry: dict[int, set[str]] = {}
    for row in store.iter_entries(since=since):
        scanned += 1
        now_rules = after(row)
        matched_now += bool(now_rules)
        now_by_entry[row["id"]] = now_rules
        old_rules = then.get(row["id"], set()) if before is None else before(row)
        for change, rules in (("new", now_rules - old_rules), ("gone", old_rules - now_rules)):
            for rule in sorted(rules):
                changes.append({"change": change, "rule": rule, "id": row["id"], "feed": row["feed"],
                                "title": row["title"]})
    muted = []
    for m in muted_matches(store, since):
        muted.append({"change": "muted", "rule": m["rule"], "id": m["id"], "feed": m["feed"],
                      "title": m["title"], "reason": m["mute_reason"],
                      "still_matches": m["rule"] in now_by_entry.get(m["id"], set())})
    return {"scanned": scanned, "matched_now": matched_now, "changes": changes, "muted": muted}
