"""What a match shows a person: its score, its hits and a snippet with the hits marked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from monitor.models import Hit, Match

FIELD_WEIGHTS = {"title": 3.0, "summary": 1.5, "content": 1.0}
_FIELD_ORDER = {name: index for index, name in enumerate(FIELD_WEIGHTS)}
SNIPPET_WIDTH = 200
_MIN_BODY_WIDTH = 80
_SEPARATOR = " — "


class Occurrence(NamedTuple):
    """One place where a term of a rule occurs."""

    field: str
    first: int  # index of its first word in the field
    last: int  # index after its last word
    term: str  # the alias or keyword as written in watch.toml
    start: int  # character offsets into the original field text
    end: int


def score(occurrences: Iterable[Occurrence]) -> float:
    """Sum, over each distinct term and field, of the field's weight for the first
    occurrence, plus half of the previous addition for each further one."""
    counts = Counter((occurrence.term, occurrence.field) for occurrence in set(occurrences))
    total = sum(FIELD_WEIGHTS[field] * (2 - 2 ** (1 - count)) for (_, field), count in counts.items())
    return round(total, 2)


def hits(occurrences: Iterable[Occurrence]) -> tuple[Hit, ...]:
    """Distinct hits in reading order: title first, then summary, then content."""
    unique = {(o.field, o.start, o.end, o.term) for o in occurrences}
    ordered = sorted(unique, key=lambda hit: (_FIELD_ORDER[hit[0]], hit[1], hit[2], hit[3]))
    return tuple(Hit(field=field, start=start, end=end, term=term) for field, start, end, term in ordered)


def snippet(texts: Mapping[str, str], found: Sequence[Hit], width: int = SNIPPET_WIDTH) -> str:
    """About WIDTH characters around the densest hits, hits marked [[like this]];
    the title comes first when it has hits, then the body field with most hits."""
    parts: list[str] = []
    title_hits = [hit for hit in found if hit.field == "title"]
    if title_hits:
        parts.append(_extract(texts.get("title", ""), title_hits, width))
    body = Counter(hit.field for hit in found if hit.field != "title")
    if body:
        field = max(body, key=lambda name: (body[name], -_FIELD_ORDER[name]))
        room = max(width - len(parts[0]) if parts else width, _MIN_BODY_WIDTH)
        parts.append(_extract(texts.get(field, ""), [hit for hit in found if hit.field == field], room))
    return _SEPARATOR.join(parts)


def _extract(text: str, found: Sequence[Hit], width: int) -> str:
    """The window of TEXT at most WIDTH long (cut at spaces) holding the most hits."""
    ranges = _merged((hit.start, hit.end) for hit in found)
    start, end = _window(text, ranges, width)
    marked: list[str] = []
    position = start
    for hit_start, hit_end in ranges:
        if hit_start < start or hit_end > end:
            continue
        marked += [text[position:hit_start], "[[", text[hit_start:hit_end], "]]"]
        position = hit_end
    marked.append(text[position:end])
    body = " ".join("".join(marked).split())
    return ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _window(text: str, ranges: Sequence[tuple[int, int]], width: int) -> tuple[int, int]:
    if len(text) <= width:
        return 0, len(text)
    best_start, best_count = 0, -1
    for hit_start, _ in ranges:
        candidate = max(0, min(hit_start - width // 4, len(text) - width))
        count = sum(1 for s, e in ranges if s >= candidate and e <= candidate + width)
        if count > best_count:
            best_start, best_count = candidate, count
    first_hit = min((s for s, e in ranges if s >= best_start), default=best_start)
    start = best_start
    if start > 0:
        space = text.find(" ", start, first_hit)
        start = space + 1 if space >= 0 else start
    end = min(len(text), best_start + width)
    last_hit = max((e for s, e in ranges if e <= end and s >= start), default=start)
    if end < len(text):
        space = text.rfind(" ", last_hit, end)
        end = space if space >= 0 else end
    return start, end


def as_dict(match: Match) -> dict[str, Any]:
    """A match as plain JSON-ready data (for `monitor match --json` and storage)."""
    return {
        "rule": match.rule,
        "score": match.score,
        "severity": match.severity,
        "tags": list(match.tags),
        "hits": [{"field": hit.field, "start": hit.start, "end": hit.end, "term": hit.term} for hit in match.hits],
        "snippet": match.snippet,
        "hits_omitted": match.hits_omitted,
    }


def describe(match: Match, texts: Mapping[str, str] | None = None) -> str:
    """A match for people: rule, severity, score and tags, the snippet, then each hit
    (with the matched text itself when TEXTS, the entry's fields, are given)."""
    tags = f", tags: {', '.join(match.tags)}" if match.tags else ""
    lines = [f"{match.rule} ({match.severity}, score {match.score:g}{tags})", f"  {match.snippet}"]
    for hit in match.hits:
        found = f" {texts[hit.field][hit.start:hit.end]!r}" if texts and hit.field in texts else ""
        lines.append(f"  {hit.field} {hit.start}-{hit.end}{found} <- {hit.term}")
    return "\n".join(lines)
