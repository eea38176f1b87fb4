"""Today's matched stories for a person to triage: one item per story, its copies
from other outlets joined under it (the same keys alerts use to send a story once).

Plain data in (rows of `search.list_matches`), plain data out; no SQL here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.stories import story_keys

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class StoryItem:
    """One story: the newest copy's text, every copy's outlet and every rule's match."""

    id: int  # the story shown (its newest copy)
    title: str
    url: str | None
    feed: str
    created: str  # when it last matched
    first_seen: str
    snippet: str
    severity: str
    score: float
    matches: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)  # {"id", "feed", "url"} of the others

    @property
    def rules(self) -> list[str]:
        return sorted({m["rule"] for m in self.matches})

    @property
    def copies_count(self) -> int:
        """Copies folded in: why `monitor status` (which counts stored items) may say more."""
        return len(self.copies)

    @property
    def ids(self) -> list[int]:
        return [self.id] + [c["id"] for c in self.copies]


def group_stories(rows: Sequence[dict[str, Any]]) -> list[StoryItem]:
    """ROWS (newest first) folded into stories, newest first."""
    by_entry: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_entry.setdefault(row["id"], []).append(row)
    owner: dict[str, int] = {}  # story key -> the item that holds it
    items: dict[int, StoryItem] = {}
    for entry_id, matches in by_entry.items():  # newest entry first: it leads its story
        first = matches[0]
        keys = story_keys(first["url"], first["title"])
        lead = next((owner[key] for key in keys if key in owner), None)
        if lead is None:
            best = min(matches, key=lambda m: (SEVERITY_ORDER.get(m["severity"], 3), -m["score"]))
            items[entry_id] = StoryItem(
                id=entry_id, title=first["title"], url=first["url"], feed=first["feed"],
                created=first["created"], first_seen=first["first_seen"], snippet=best["snippet"],
                severity=best["severity"], score=max(m["score"] for m in matches),
                matches=list(matches))
            lead = entry_id
        else:
            item = items[lead]
            item.copies.append({"id": entry_id, "feed": first["feed"], "url": first["url"]})
            known = {m["rule"] for m in item.matches}
            item.matches += [m for m in matches if m["rule"] not in known]
        for key in keys:
            owner.setdefault(key, lead)
    return list(items.values())
