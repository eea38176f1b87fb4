"""The search index's tables and queries (what goes in the index is monitor.read.search's).

`search_index` holds, per story, the tokens of its words' keys: on SQLite an
FTS5 table whose rowid is the entry id, on PostgreSQL a table keyed by
`entry_id` with a tsvector of the 'simple' configuration (the folding is
monitor's own, the same on both). `search_indexed` says which version of the
story is indexed. Every function takes the `Store` first and deals in plain
data; a query comes as an FTS5 expression of quoted tokens, prefixes, AND, OR
and parentheses, which `tsquery` writes in PostgreSQL's syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from monitor.store.database import Store
from monitor.store.values import reads_database, to_text

INDEX_BATCH = 500  # stories per indexing transaction: the daemon's writes slip in between
_FETCH_CHUNK = 200  # candidate stories read at once while verifying


def stale_entries(store: Store, limit: int = INDEX_BATCH) -> list[dict[str, Any]]:
    """Stories not indexed yet, or indexed at an older version, oldest first."""
    return list(store.db.query(
        "SELECT e.id, e.version, e.title, e.summary, e.content, e.language FROM entries e "
        "LEFT JOIN search_indexed s ON s.entry_id = e.id "
        "WHERE s.entry_id IS NULL OR s.version != e.version ORDER BY e.id LIMIT ?", [limit]))


def save_index(store: Store, documents: Sequence[tuple[int, int, str]]) -> int:
    """Write (entry id, version, index words) rows in one transaction; a story pruned
    meanwhile is skipped. Returns how many were written."""
    written = 0
    with store.transaction():
        for entry_id, version, words in documents:
            if store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is None:
                continue
            key = "entry_id" if store.dialect == "postgresql" else "rowid"
            store.db.execute(f"DELETE FROM search_index WHERE {key} = ?", [entry_id])
            store.db.execute(f"INSERT INTO search_index ({key}, words) VALUES (?, ?)", [entry_id, words])
            store.db.execute("INSERT INTO search_indexed (entry_id, version) VALUES (?, ?) "
                             "ON CONFLICT (entry_id) DO UPDATE SET version = excluded.version",
                             [entry_id, version])
            written += 1
    return written


@reads_database
def pending_count(store: Store) -> int:
    """How many stories the index is missing or holds at an older version."""
    return store.db.execute(
        "SELECT COUNT(*) FROM entries e LEFT JOIN search_indexed s ON s.entry_id = e.id "
        "WHERE s.entry_id IS NULL OR s.version != e.version").fetchone()[0]


def candidates(store: Store, fts: str | None, since: datetime | None,
               feed: str | None) -> Iterator[dict[str, Any]]:
    """Stories newest first whose index holds FTS (an FTS5 expression; None: every story),
    with their text: ids first (cheap to sort), texts in chunks."""
    args = {"since": to_text(since), "feed": feed, "fts": fts}
    filters = "(:since IS NULL OR e.first_seen >= :since) AND (:feed IS NULL OR f.name = :feed)"
    if fts is None:
        sql = f"SELECT e.id FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE {filters}"
    elif store.dialect == "postgresql":
        args["fts"] = tsquery(fts)
        sql = ("SELECT e.id FROM search_index s JOIN entries e ON e.id = s.entry_id JOIN feeds f ON f.id = e.feed_id "
               f"WHERE s.document @@ to_tsquery('simple', :fts) AND {filters}")
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


_FTS_PARTS = re.compile(r'"([^"]*)"(\*?)| AND | OR ')


def tsquery(fts: str) -> str:
    """An FTS5 expression of monitor's (quoted tokens, `"prefix"*`, AND, OR, parentheses)
    in PostgreSQL's tsquery syntax: 'token', 'prefix':*, &, |."""
    def part(found: re.Match[str]) -> str:
        if found.group() == " AND ":
            return " & "
        if found.group() == " OR ":
            return " | "
        return f"'{found.group(1)}'" + (":*" if found.group(2) else "")
    return _FTS_PARTS.sub(part, fts)
