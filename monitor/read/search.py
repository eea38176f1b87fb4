"""Reading back what was stored: full-text search, stored matches, one story, muting.

Search
------
A query is written in the watch rules' own language (see `monitor.match`):
words are ANDed, ``"a phrase"`` is matched in order, ``OR``, ``NOT``,
``word*``, ``a NEAR/5 b``, ``title:word``, ``( )``, and ``@entity`` /
``#group`` from watch.toml. It finds word forms the way the matcher does:
"Китай" finds Китаю and Китаєм, "drone" finds drones, "Russia" finds
Russia's, and accents on Latin letters are ignored (cafe finds café).

FTS5's tokenizer cannot fold Ukrainian or Russian inflections, so the index
does not hold the text: it holds, per story, every *key* of every word (its
normal form, English singular and possessive forms, Ukrainian and Russian
dictionary forms) as FTS5 tokens. A query word becomes "any of its keys", so
FTS5 narrows the stories to those holding every required word in some form;
each candidate is then matched with the real matcher, which checks phrases,
order, NEAR, NOT and fields on the original text and finds the hits to mark
in the snippet. The index is filled lazily (`index_pending`), never on the
ingest path; an updated story (a version bump) is indexed again.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.alert.outbox import mute_alerts
from monitor.errors import MonitorError, UsageError
from monitor.match import Matcher, Rule, Watch
from monitor.match.query import (
    And,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Ref,
    Scope,
    Term,
    parse_query,
    true_without_hits,
    walk,
)
from monitor.match.text import WORDS, Analyser, language_mode
from monitor.models import Match
from monitor.store.database import Store
from monitor.store.matches import (
    mark_matches_relevant,
    match_marks,
    match_rows,
    mute_match,
    muted_match_rows,
    story_alert_rows,
    story_exists,
    story_match_rows,
    story_row,
    unmute_match,
)
from monitor.store.search import INDEX_BATCH, candidates, save_index, stale_entries
from monitor.store.values import reads_database

_CACHE_SIZE = 200_000  # distinct raw words whose tokens are remembered
_SEARCH_RULE = "search"
_TOKEN_CATEGORIES = ("L", "N", "Co")
_ANALYSER = Analyser(fold_diacritics=True)


# --------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------


def _token(key: str) -> str:
    """A word key as one FTS5 unicode61 token: the language tag and every character
    the tokenizer would split on (apostrophes, combining marks) dropped. The same
    mapping on both sides keeps a shared key a shared token."""
    key = key.partition(":")[2] if ":" in key else key
    return "".join(c for c in key if unicodedata.category(c).startswith(_TOKEN_CATEGORIES))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _word_tokens(raw: str, mode: str) -> frozenset[str]:
    """The tokens of one raw word: news repeats its words, so each is worked out once."""
    return frozenset(_token(key) for key in _ANALYSER.word(raw, mode).keys) - {""}


def index_words(title: str, summary: str, content: str, language: str | None) -> str:
    """What the index holds for one story: the distinct tokens of its words' keys."""
    texts = (title or "", summary or "", content or "")
    mode = language_mode(language, *texts)
    raw_words = {word for text in texts for word in WORDS.findall(text)}
    tokens: set[str] = set()
    for raw in raw_words:
        tokens |= _word_tokens(raw, mode)
    return " ".join(sorted(tokens))


def index_documents(rows: Sequence[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """`stale_entries` rows (monitor.store.search) as `save_index` documents: the CPU part
    of indexing, which needs no database and may run on any thread."""
    return [(row["id"], row["version"], index_words(row["title"], row["summary"], row["content"],
                                                     row["language"])) for row in rows]


def index_pending(store: Store, limit: int | None = None) -> int:
    """Index new and updated stories (at most LIMIT), a batch per transaction; returns
    how many were indexed. Safe to call any time: nothing pending costs one query."""
    done = 0
    while limit is None or done < limit:
        batch = INDEX_BATCH if limit is None else min(INDEX_BATCH, limit - done)
        rows = stale_entries(store, batch)
        if not rows:
            break
        done += save_index(store, index_documents(rows))
        if len(rows) < batch:
            break
    return done


# --------------------------------------------------------------------------
# searching
# --------------------------------------------------------------------------


def parse_search(query: str) -> Node:
    """The query's syntax tree; a mistake is a UsageError with a caret under the spot."""
    try:
        tree = parse_query(query)
    except QueryError as error:
        raise UsageError(f"search query: {error.message}\n  {query}\n  {' ' * error.offset}^") from None
    if true_without_hits(tree):
        raise UsageError("search query: it holds for stories that contain none of its words "
                         "(only NOT); add a word to look for")
    return tree


def needs_watch(tree: Node) -> bool:
    """Whether the query names an @entity or #group of watch.toml."""
    return any(isinstance(node, Ref) for node in walk(tree))


@reads_database
def search(store: Store, query: str, *, since: datetime | None = None, feed: str | None = None,
           limit: int | None = 20, watch: Watch | None = None) -> list[dict[str, Any]]:
    """Stories matching QUERY, newest first, each with its score, hits and a snippet
    with the hits marked [[like this]]. WATCH supplies @entities and #groups."""
    tree = parse_search(query)
    watch = watch or Watch()
    _check_refs(tree, watch)
    search_watch = Watch(entities=watch.entities, groups=watch.groups, fold_diacritics=True,
                         rules=(Rule(name=_SEARCH_RULE, query=query, tree=tree),))
    matcher = Matcher.compile(search_watch)
    found: list[dict[str, Any]] = []
    for row in candidates(store, _fts(tree, watch), since, feed):
        matches = matcher.match(title=row["title"], summary=row["summary"], content=row["content"],
                                language=row["language"])
        if not matches:
            continue
        found.append(_result(row, matches[0]))
        if limit is not None and len(found) >= limit:
            break
    return found


def _check_refs(tree: Node, watch: Watch) -> None:
    for node in walk(tree):
        if isinstance(node, Ref):
            known = watch.entities if node.kind == "entity" else watch.groups
            if node.name not in known:
                sigil = "@" if node.kind == "entity" else "#"
                names = ", ".join(sigil + name for name in sorted(known)) or "none"
                raise UsageError(f"search query: no {node.kind} {sigil}{node.name} in watch.toml "
                                 f"(known: {names})")


def _fts(node: Node, watch: Watch) -> str | None:
    """An FTS5 expression true for every story the query can match (None: no narrowing).

    Only presence of words is asked of FTS5; the matcher checks the rest, so
    NOT (whose words FTS5 reads in more forms than the matcher) narrows nothing.
    """
    if isinstance(node, Term):
        return _term_fts(node.text)
    if isinstance(node, Ref):
        term_set = watch.entities[node.name] if node.kind == "entity" else watch.groups[node.name]
        terms = term_set.aliases if node.kind == "entity" else term_set.terms
        return _any([_term_fts(term) for term in terms])
    if isinstance(node, (And, Near)):
        # A run of ANDs (or ORs) is one flat list: nested parentheses, one level per
        # operator, overflow FTS5's parser stack at about 95 words.
        parts = [part for part in (_fts(side, watch) for side in _operands(node, (And, Near)))
                 if part]
        return f"({' AND '.join(parts)})" if parts else None
    if isinstance(node, Or):
        return _any([_fts(side, watch) for side in _operands(node, (Or,))])
    if isinstance(node, Scope):
        return _fts(node.operand, watch)
    assert isinstance(node, Not)
    return None


def _operands(node: Node, kinds: tuple[type, ...]) -> list[Node]:
    """The operands of a chain of the same operator, left to right, without recursion."""
    found: list[Node] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, kinds):
            pending += [current.right, current.left]
        else:
            found.append(current)
    return found


def _any(parts: list[str | None]) -> str | None:
    if not parts or None in parts:
        return None
    return f"({' OR '.join(dict.fromkeys(parts))})"


def _term_fts(term: str) -> str | None:
    """Every word of TERM in one of its forms (a wildcard word as an FTS5 prefix)."""
    parts = []
    for word in _ANALYSER.pattern(term):
        if word.prefix is not None:
            prefix = _token(word.prefix)
            if prefix:
                parts.append(f'"{prefix}"*')
            continue
        tokens = sorted({_token(key) for key in word.keys} - {""})
        if tokens:
            parts.append("(" + " OR ".join(f'"{token}"' for token in tokens) + ")")
    return f"({' AND '.join(parts)})" if parts else None


def _result(row: dict[str, Any], match: Match) -> dict[str, Any]:
    return {
        "id": row["id"], "feed": row["feed"], "title": row["title"], "url": row["url"],
        "published": row["published"], "first_seen": row["first_seen"], "score": match.score,
        "snippet": match.snippet or row["title"],
        "hits": [{"field": hit.field, "start": hit.start, "end": hit.end, "term": hit.term}
                 for hit in match.hits],
    }


# --------------------------------------------------------------------------
# stored matches, one story
# --------------------------------------------------------------------------

def _match_row(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns decoded; `current` says whether the hits' offsets fit the stored text."""
    row = dict(row)
    row["tags"] = json.loads(row["tags"])
    row["hits"] = json.loads(row["hits"])
    row["muted"] = row["muted_at"] is not None
    row["current"] = row.pop("version") == row["entry_version"]
    return row


TRIAGE_STATES = ("open", "relevant", "false_positive", "all")


@reads_database
def list_matches(store: Store, *, since: datetime | None = None, rule: str | None = None,
                 feed: str | None = None, limit: int | None = None, language: str | None = None,
                 severity: str | None = None, triage: str = "all") -> list[dict[str, Any]]:
    """Stored matches newest first (by when they were recorded); `id` is the story's.

    TRIAGE keeps "open" matches (neither marked relevant nor a false positive),
    "relevant" or "false_positive" ones, or "all"."""
    if triage not in TRIAGE_STATES:
        raise UsageError(f"triage state {triage!r}: expected one of {', '.join(TRIAGE_STATES)}")
    rows = match_rows(store, since=since, rule=rule, feed=feed, limit=limit, language=language,
                      severity=severity, triage=triage)
    return [_match_row(row) for row in rows]


def muted_matches(store: Store, since: datetime | None = None) -> list[dict[str, Any]]:
    """Matches a person marked false positives, for stories first seen since SINCE,
    most recently muted first: what `rules backtest` shows so the rule can be fixed."""
    rows = muted_match_rows(store, since)
    return [_match_row(row) for row in rows]


@reads_database
def get_story(store: Store, entry_id: int) -> dict[str, Any] | None:
    """One story with its text, its matches and its alerts (with delivery status; `rules`:
    the rules each alert brought to its destination)."""
    story = story_row(store, entry_id)
    if story is None:
        return None
    story["authors"] = json.loads(story["authors"])
    story["tags"] = json.loads(story["tags"])
    story["matches"] = [_match_row(row) for row in story_match_rows(store, entry_id)]
    story["alerts"] = [dict(row, possible_duplicate=bool(row["possible_duplicate"]))
                       for row in story_alert_rows(store, entry_id)]
    return story


# --------------------------------------------------------------------------
# muting false positives
# --------------------------------------------------------------------------


def mute(store: Store, entry_id: int, *, rule: str | None, reason: str | None,
         now: datetime) -> dict[str, Any]:
    """Mark the story's matches (all, or RULE's) false positives and mute their unsent
    alerts, in one transaction. Returns the rules muted now, those muted before,
    and how many alerts were stopped. MonitorError (exit 1) for an unknown story or rule."""
    _check_story(store, entry_id)
    with store.transaction():
        rows = match_marks(store, entry_id)
        if not rows:
            raise MonitorError(f"story {entry_id} has no matches to mute")
        chosen = [row for row in rows if rule is None or row[1] == rule]
        if not chosen:
            raise MonitorError(f"story {entry_id} has no match of rule {rule!r} "
                               f"(its rules: {', '.join(row[1] for row in rows)})")
        alerts = 0
        for match_id, _, _ in chosen:
            mute_match(store, match_id, now, reason)
            alerts += mute_alerts(store, match_id, now)
    return {"id": entry_id, "muted": [row[1] for row in chosen if row[2] is None],
            "already_muted": [row[1] for row in chosen if row[2] is not None], "alerts_muted": alerts}


def mark_relevant(store: Store, entry_id: int, *, now: datetime) -> dict[str, Any]:
    """Confirm the story's matches as relevant, undoing a false-positive mark (the
    alerts `mute` stopped stay stopped). MonitorError for an unknown story."""
    _check_story(store, entry_id)
    changed = mark_matches_relevant(store, entry_id, now)
    if not changed:
        raise MonitorError(f"story {entry_id} has no matches to mark")
    return {"id": entry_id, "relevant": changed}


def unmute(store: Store, entry_id: int, *, rule: str | None) -> dict[str, Any]:
    """Undo `mute`: the story's matches (all, or RULE's) count again. Alerts muted then
    stay unsent (they are old news); a later change of the story alerts as usual."""
    _check_story(store, entry_id)
    with store.transaction():
        rows = match_marks(store, entry_id)
        chosen = [row for row in rows if rule is None or row[1] == rule]
        if rule is not None and not chosen:
            raise MonitorError(f"story {entry_id} has no match of rule {rule!r} "
                               f"(its rules: {', '.join(row[1] for row in rows) or 'none'})")
        for match_id, _, muted_at in chosen:
            if muted_at is not None:
                unmute_match(store, match_id)
    return {"id": entry_id, "unmuted": [row[1] for row in chosen if row[2] is not None],
            "not_muted": [row[1] for row in chosen if row[2] is None]}


def _check_story(store: Store, entry_id: int) -> None:
    if not story_exists(store, entry_id):
        raise MonitorError(f"no story with ID {entry_id} (see `monitor stories` or `monitor matches`)")
