"""The store's PostgreSQL backend: its SQL translation, and its schema beside SQLite's."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.store.database import Store
from monitor.store.postgres import connect, split_script, translate
from monitor.store.postgres_schema import MIGRATIONS, apply, pending


@pytest.mark.parametrize("sqlite_sql, psycopg_sql", [
    ("SELECT id FROM feeds WHERE name = ?", "SELECT id FROM feeds WHERE name = %s"),
    ("UPDATE entries SET updated_at = :now WHERE id = :id",
     "UPDATE entries SET updated_at = %(now)s WHERE id = %(id)s"),
    ("SELECT * FROM e WHERE language LIKE :language || '-%'",
     "SELECT * FROM e WHERE language LIKE %(language)s || '-%%'"),
    ("SELECT 'a?b :c' || ?", "SELECT 'a?b :c' || %s"),
    ("SELECT 'it''s ?' , \"odd?name\" FROM t WHERE x = ?", "SELECT 'it''s ?' , \"odd?name\" FROM t WHERE x = %s"),
    ("SELECT 5 % 2, payload::json FROM t", "SELECT 5 %% 2, payload::json FROM t"),
])
def test_parameters_are_translated_outside_quoted_text(sqlite_sql: str, psycopg_sql: str) -> None:
    assert translate(sqlite_sql) == psycopg_sql


def test_a_script_splits_on_semicolons_outside_quotes() -> None:
    assert split_script("CREATE TABLE a (x TEXT DEFAULT ';');\n INSERT INTO a VALUES ('b;c');;") == [
        "CREATE TABLE a (x TEXT DEFAULT ';')", "INSERT INTO a VALUES ('b;c')"]


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    from monitor.errors import MonitorError

    with pytest.raises(MonitorError) as caught:
        connect("postgresql://monitor:s3cret@127.0.0.1:9/monitor")
    assert "cannot connect to the database at postgresql://monitor:***@127.0.0.1:9/monitor" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def _sqlite_columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' "
        "AND name != 'search_index' AND name NOT LIKE 'search\\_index\\_%' ESCAPE '\\'")]  # FTS5's own
    return {table: sorted(row[1] for row in conn.execute(f"PRAGMA table_info({table})")) for table in tables}


def test_the_schema_has_sqlites_tables_and_columns(postgres_url: str, tmp_path: Path) -> None:
    Store.open(tmp_path / "monitor.db").close()
    db = connect(postgres_url)
    try:
        assert apply(db) == [name for name, _ in MIGRATIONS]
        rows = db.query("SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND table_name NOT IN ('schema_migrations', 'search_index')")
        columns: dict[str, list[str]] = {}
        for row in rows:
            columns.setdefault(row["table_name"], []).append(row["column_name"])
        assert {table: sorted(names) for table, names in columns.items()} == _sqlite_columns(tmp_path / "monitor.db")
    finally:
        db.close()


def test_the_migrations_carry_sqlites_names_in_order() -> None:
    from sqlite_utils import Database

    from monitor.store.schema import migrations

    sqlite_names = [migration.name for migration in migrations.pending(Database(memory=True))]
    assert [name for name, _ in MIGRATIONS] == sqlite_names


def test_workers_starting_at_once_create_the_schema_once(postgres_url: str) -> None:
    applied: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker() -> None:
        db = connect(postgres_url)
        try:
            start.wait()
            applied.append(apply(db))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(map(len, applied)) == [0, 0, 0, len(MIGRATIONS)]
    db = connect(postgres_url)
    assert pending(db) == []
    db.close()


def test_the_stores_sql_runs_as_written(postgres_url: str) -> None:
    db = connect(postgres_url)
    try:
        apply(db)
        db.execute("INSERT INTO feeds (name, url, config_url, created) VALUES (?, ?, ?, ?)",
                   ["kyiv", "http://127.0.0.1/k", "http://127.0.0.1/k", "2026-12-05T06:00:00Z"])
        row = {"feed_id": 1, "guid": "g1", "title": "Chinese drone parts", "content_hash": "h",
               "first_seen": "2026-12-05T06:00:00Z", "last_seen": "2026-12-05T06:00:00Z"}
        insert = ("INSERT INTO entries (feed_id, guid, title, content_hash, first_seen, last_seen) "
                  "VALUES (:feed_id, :guid, :title, :content_hash, :first_seen, :last_seen) "
                  "ON CONFLICT (feed_id, guid) DO NOTHING RETURNING id, version")
        assert db.execute(insert, row).fetchone() == (1, 1)
        assert db.execute(insert, row).fetchone() is None  # stored once: the unique key, not luck
        db.execute("BEGIN IMMEDIATE")
        assert db.conn.in_transaction
        db.execute("UPDATE entries SET title = ? WHERE id = ?", ["changed", 1])
        db.rollback()
        assert not db.conn.in_transaction
        assert list(db.query("SELECT title FROM entries WHERE guid LIKE ? || '%'", ["g"])) == [
            {"title": "Chinese drone parts"}]
    finally:
        db.close()


def test_write_transactions_take_turns_as_on_sqlite(postgres_url: str) -> None:
    """Two processes' write transactions on one database run one after the other (SQLite's
    BEGIN IMMEDIATE), so the rules the store keeps under one writer hold on PostgreSQL too."""
    from support.daemon import wait_until

    first, second, watcher = Store.open(postgres_url), Store.open(postgres_url), connect(postgres_url)
    order: list[str] = []
    try:
        with first.transaction():
            first.set_meta("turn", "first")
            waiting = threading.Thread(target=lambda: (second.set_meta("turn", "second"), order.append("second")))
            waiting.start()
            pid = second.db.conn.raw.info.backend_pid
            assert wait_until(lambda: watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = ?", [pid]).fetchone()[0] == "Lock", 10)
            order.append("first")
        waiting.join(10)
        assert order == ["first", "second"] and first.get_meta("turn") == "second"
    finally:
        first.close(), second.close(), watcher.close()
