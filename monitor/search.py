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
from datetime import datetime
from typing import Any, Iterator, Sequence

from monitor.alert.outbox import mute_alerts
from monitor.errors import MonitorError, UsageError
from monitor.match import Matcher, Rule, Watch
from monitor.match.query import (And, Near, Node, Not, Or, QueryError, Ref, Scope, Term, parse_query,
                                 true_without_hits, walk)
from monitor.match.text import WORDS, Analyser, language_mode
from monitor.models import Match
from monitor.store import Store, reads_database, to_text

INDEX_BATCH = 500  # stories per indexing transaction: the daemon's writes slip in between
_FETCH_CHUNK = 200  # candidate stories read at once while verifying
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


def stale_entries(store: Store, limit: int = INDEX_BATCH) -> list[dict[str, Any]]:
    """Stories not indexed yet, or indexed at an older version, oldest first."""
    return list(store.db.query(
        "SELECT e.id, e.version, e.title, e.summary, e.content, e.language FROM entries e "
        "LEFT JOIN search_indexed s ON s.entry_id = e.id "
        "WHERE s.entry_id IS NULL OR s.version != e.version ORDER BY e.id LIMIT ?", [limit]))


def index_documents(rows: Sequence[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """`stale_entries` rows as `save_index` documents: the CPU part of indexing, which
    needs no database and may run on any thread."""
    return [(row["id"], row["version"], index_words(row["title"], row["summary"], row["content"],
                                                     row["language"])) for row in rows]


def save_index(store: Store, documents: Sequence[tuple[int, int, str]]) -> int:
    """Write (entry id, version, index_words) rows in one transaction; a story pruned
    meanwhile is skipped. Returns how many were written."""
    written = 0
    with store.transaction():
        for entry_id, version, words in documents:
            if store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is None:
                continue
            store.db.execute("DELETE FROM search_index WHERE rowid = ?", [entry_id])
            store.db.execute("INSERT INTO search_index (rowid, words) VALUES (?, ?)", [entry_id, words])
            store.db.execute("INSERT INTO search_indexed (entry_id, version) VALUES (?, ?) "
                             "ON CONFLICT (entry_id) DO UPDATE SET version = excluded.version",
                             [entry_id, version])
            written += 1
    return written


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


@reads_database
def pending_count(store: Store) -> int:
    """How many stories the index is missing or holds at an older version."""
    return store.db.execute(
        "SELECT COUNT(*) FROM entries e LEFT JOIN search_indexed s ON s.entry_id = e.id "
        "WHERE s.entry_id IS NULL OR s.version != e.version").fetchone()[0]


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
    for row in _candidates(store, _fts(tree, watch), since, feed):
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


def _candidates(store: Store, fts: str | None, since: datetime | None,
                feed: str | None) -> Iterator[dict[str, Any]]:
    """Stories newest first that may match: ids first (cheap to sort), texts in chunks."""
    args = {"since": to_text(since), "feed": feed, "fts": fts}
    filters = "(:since IS NULL OR e.first_seen >= :since) AND (:feed IS NULL OR f.name = :feed)"
    if fts is None:
        sql = f"SELECT e.id FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE {filters}"
    else:
        sql = ("SELECT e.id FROM search_index s JOIN entries e ON e.id = s.rowid "
               f"JOIN feeds f ON f.id = e.feed_id WHERE search_index MATCH :fts AND {filters}")
    ids = [row[0] for row in store.db.execute(sql + " ORDER BY e.first_seen DESC, e.id DESC", args)]
    for start in range(0, len(ids), _FETCH_CHUNK):
        chunk = ids[start:start + _FETCH_CHUNK]
        rows = {row["id"]: row for row in store.db.query(
            "SELECT e.id, f.name AS feed, e.title, e.summary, e.content, e.language, e.url, "
            "e.published, e.first_seen FROM entries e JOIN feeds f ON f.id = e.feed_id "
            f"WHERE e.id IN ({', '.join('?' * len(chunk))})", chunk)}
        yield from (rows[entry_id] for entry_id in chunk if entry_id in rows)


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

_MATCH_COLUMNS = (
    "m.entry_id AS id, m.id AS match_id, m.rule, m.score, m.severity, m.tags, m.hits, m.snippet, "
    "m.entry_version, m.created, m.muted_at, m.mute_reason, m.hits_omitted, f.name AS feed, "
    "e.title, e.url, e.published, e.first_seen, e.version")


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
    rows = store.db.query(
        f"SELECT {_MATCH_COLUMNS} FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id WHERE (:since IS NULL OR m.created >= :since) "
        "AND (:rule IS NULL OR m.rule = :rule) AND (:feed IS NULL OR f.name = :feed) "
        "AND (:language IS NULL OR e.language = :language OR e.language LIKE :language || '-%') "
        "AND (:severity IS NULL OR m.severity = :severity) "
        "AND (:triage = 'all' OR (:triage = 'open' AND m.muted_at IS NULL AND m.reviewed_at IS NULL) "
        "  OR (:triage = 'relevant' AND m.reviewed_at IS NOT NULL AND m.muted_at IS NULL) "
        "  OR (:triage = 'false_positive' AND m.muted_at IS NOT NULL)) "
        "ORDER BY m.created DESC, m.id DESC LIMIT :limit",
        {"since": to_text(since), "rule": rule, "feed": feed, "language": language,
         "severity": severity, "triage": triage, "limit": -1 if limit is None else limit})
    return [_match_row(row) for row in rows]


@reads_database
def match_facets(store: Store) -> dict[str, list[str]]:
    """The rules, feeds and languages that have matches: the choices of a filter form."""
    def column(sql: str) -> list[str]:
        return [row[0] for row in store.db.execute(sql).fetchall() if row[0]]

    return {
        "rules": column("SELECT DISTINCT rule FROM matches ORDER BY rule"),
        "feeds": column("SELECT DISTINCT f.name FROM matches m JOIN entries e ON e.id = m.entry_id "
                        "JOIN feeds f ON f.id = e.feed_id ORDER BY f.name"),
        "languages": column("SELECT DISTINCT e.language FROM matches m JOIN entries e "
                            "ON e.id = m.entry_id ORDER BY e.language"),
    }


def latest_matches(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest matched stories with their outlet and matches, for the matches Atom feed:
    `matches` is a JSON array of {rule, score, severity, hits, snippet}. A match marked a
    false positive is left out (as the report leaves it uncounted), and so is a story
    whose every match is."""
    return list(store.db.query(
        "SELECT m.entry_id, MAX(m.created) AS created, e.feed_id, e.guid, e.title, e.url, "
        "e.published, f.name AS feed, json_group_array(json_object('rule', m.rule, "
        "'score', m.score, 'severity', m.severity, 'hits', json(m.hits), 'snippet', m.snippet)) "
        "AS matches FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id WHERE m.muted_at IS NULL GROUP BY m.entry_id "
        "ORDER BY MAX(m.created) DESC, m.entry_id DESC LIMIT ?", [limit]))


def stored_rule_names(store: Store) -> list[str]:
    """Every rule that has a stored match, for telling a typo from a quiet rule."""
    return [row[0] for row in store.db.execute("SELECT DISTINCT rule FROM matches ORDER BY rule")]


def muted_matches(store: Store, since: datetime | None = None) -> list[dict[str, Any]]:
    """Matches a person marked false positives, for stories first seen since SINCE,
    most recently muted first: what `rules backtest` shows so the rule can be fixed."""
    rows = store.db.query(
        f"SELECT {_MATCH_COLUMNS} FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id WHERE m.muted_at IS NOT NULL "
        "AND (:since IS NULL OR e.first_seen >= :since) ORDER BY m.muted_at DESC, m.id DESC",
        {"since": to_text(since)})
    return [_match_row(row) for row in rows]


@reads_database
def get_story(store: Store, entry_id: int) -> dict[str, Any] | None:
    """One story with its text, its matches and its alerts (with delivery status; `rules`:
    the rules each alert brought to its destination)."""
    rows = list(store.db.query(
        "SELECT e.id, f.name AS feed, e.guid, e.url, e.title, e.summary, e.content, e.language, "
        "e.published, e.updated, e.first_seen, e.last_seen, e.updated_at, e.version, e.authors, "
        "e.tags, e.match_skipped FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE e.id = ?",
        [entry_id]))
    if not rows:
        return None
    story = rows[0]
    story["authors"] = json.loads(story["authors"])
    story["tags"] = json.loads(story["tags"])
    story["matches"] = [_match_row(row) for row in store.db.query(
        f"SELECT {_MATCH_COLUMNS} FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id WHERE m.entry_id = ? ORDER BY m.id", [entry_id])]
    story["alerts"] = [dict(row, possible_duplicate=bool(row["possible_duplicate"])) for row in store.db.query(
        "SELECT a.id, a.match_id, a.rule, a.kind, a.destination, a.status, a.delivery, a.reason, "
        "a.due_at, a.created, a.attempts, a.last_attempt_at, a.sent_at, a.last_error, "
        "a.possible_duplicate, a.copy_of, (SELECT group_concat(rule, ', ') FROM (SELECT rule "
        "FROM alert_rules WHERE alert_id = a.id ORDER BY rule)) AS rules FROM alerts a "
        "WHERE a.entry_id = ? ORDER BY a.id",
        [entry_id])]
    return story


# --------------------------------------------------------------------------
# muting false positives
# --------------------------------------------------------------------------


def mute(store: Store, entry_id: int, *, rule: str | None, reason: str | None,
         now: datetime) -> dict[str, Any]:
    """Mark the story's matches (all, or RULE's) false positives and mute their unsent
    alerts, in one transaction. Returns the rules muted now, those muted before,
    and how many alerts were stopped. MonitorError (exit 1) for an unknown story or rule."""
    if store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is None:
        raise MonitorError(f"no story with ID {entry_id} (see `monitor stories` or `monitor matches`)")
    with store.transaction():
        rows = store.db.execute("SELECT id, rule, muted_at FROM matches WHERE entry_id = ? ORDER BY id",
                                [entry_id]).fetchall()
        if not rows:
            raise MonitorError(f"story {entry_id} has no matches to mute")
        chosen = [row for row in rows if rule is None or row[1] == rule]
        if not chosen:
            raise MonitorError(f"story {entry_id} has no match of rule {rule!r} "
                               f"(its rules: {', '.join(row[1] for row in rows)})")
        alerts = 0
        for match_id, _, _ in chosen:
            store.db.execute("UPDATE matches SET muted_at = COALESCE(muted_at, ?), "
                             "mute_reason = COALESCE(?, mute_reason) WHERE id = ?",
                             [to_text(now), reason, match_id])
            alerts += mute_alerts(store, match_id, now)
    return {"id": entry_id, "muted": [row[1] for row in chosen if row[2] is None],
            "already_muted": [row[1] for row in chosen if row[2] is not None], "alerts_muted": alerts}


def mark_relevant(store: Store, entry_id: int, *, now: datetime) -> dict[str, Any]:
    """Confirm the story's matches as relevant, undoing a false-positive mark (the
    alerts `mute` stopped stay stopped). MonitorError for an unknown story."""
    if store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is None:
        raise MonitorError(f"no story with ID {entry_id} (see `monitor stories` or `monitor matches`)")
    with store.transaction():
        changed = store.db.execute(
            "UPDATE matches SET reviewed_at = COALESCE(reviewed_at, ?), muted_at = NULL, "
            "mute_reason = NULL WHERE entry_id = ?", [to_text(now), entry_id]).rowcount
    if not changed:
        raise MonitorError(f"story {entry_id} has no matches to mark")
    return {"id": entry_id, "relevant": changed}


def unmute(store: Store, entry_id: int, *, rule: str | None) -> dict[str, Any]:
    """Undo `mute`: the story's matches (all, or RULE's) count again. Alerts muted then
    stay unsent (they are old news); a later change of the story alerts as usual."""
    if store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is None:
        raise MonitorError(f"no story with ID {entry_id} (see `monitor stories` or `monitor matches`)")
    with store.transaction():
        rows = store.db.execute("SELECT id, rule, muted_at FROM matches WHERE entry_id = ? ORDER BY id",
                                [entry_id]).fetchall()
        chosen = [row for row in rows if rule is None or row[1] == rule]
        if rule is not None and not chosen:
            raise MonitorError(f"story {entry_id} has no match of rule {rule!r} "
                               f"(its rules: {', '.join(row[1] for row in rows) or 'none'})")
        for match_id, _, muted_at in chosen:
            if muted_at is not None:
                store.db.execute("UPDATE matches SET muted_at = NULL, mute_reason = NULL WHERE id = ?",
                                 [match_id])
    return {"id": entry_id, "unmuted": [row[1] for row in chosen if row[2] is not None],
            "not_muted": [row[1] for row in chosen if row[2] is None]}
