"""Bad local conditions (issue 13): symlinked databases, read-only folders and files, corrupt pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.errors import DatabaseLocked, MonitorError
from monitor.store.lock import DaemonLock


def test_a_symlink_to_the_same_database_names_the_same_lock(tmp_path: Path) -> None:
    db = tmp_path / "state" / "monitor.db"
    db.parent.mkdir()
    db.touch()
    link = tmp_path / "elsewhere.db"
    link.symlink_to(db)
    with DaemonLock(db):
        with pytest.raises(DatabaseLocked):
            DaemonLock(link).acquire()
    assert DaemonLock(link).path == DaemonLock(db).path


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_database_folder_is_a_monitor_error_naming_the_lock_file(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(MonitorError, match=str(folder / "monitor.db.lock")):
            DaemonLock(folder / "monitor.db").acquire()
    finally:
        os.chmod(folder, 0o700)


# --------------------------------------------------------------------------
# search: long queries, damaged databases
# --------------------------------------------------------------------------

from datetime import UTC, datetime  # noqa: E402

from monitor.models import Entry, FeedConfig  # noqa: E402
from monitor.read.search import index_pending, search  # noqa: E402
from monitor.store.database import Store  # noqa: E402

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WORDS = [f"word{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(120)]


def _filled(path: Path, stories: int = 1) -> Path:
    store = Store.open(path)
    store.sync_feeds([FeedConfig("local", "http://127.0.0.1:9/feed", 600)], T0)
    for number in range(stories):
        entry = Entry(feed="local", guid=f"g{number}", url=f"http://127.0.0.1:9/{number}",
                      title=" ".join(WORDS), summary="filler " * 200, content_hash=f"h{number}")
        (_, kind), = store.classify("local", [entry])
        store.save_poll("local", [(entry, kind, True, [])], T0, {}, {}, keep=5)
    index_pending(store)
    store.close()
    return path


@pytest.mark.parametrize("operator, count", [(" OR ", 100), (" ", 95), (" AND ", 119)])
def test_long_flat_queries_search_without_an_fts_parser_overflow(tmp_path: Path, operator, count) -> None:
    store = Store.open(_filled(tmp_path / "monitor.db"), readonly=True)
    try:
        assert len(search(store, operator.join(WORDS[:count]))) == 1
    finally:
        store.close()


def test_a_database_with_corrupt_pages_is_a_monitor_error_naming_the_file(tmp_path: Path) -> None:
    db = _filled(tmp_path / "monitor.db", stories=40)
    data = bytearray(db.read_bytes())
    page = 4096
    pages = len(data) // page
    for offset in range((pages - 8) * page, (pages - 2) * page, page):  # story and index pages
        data[offset:offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    with pytest.raises(MonitorError, match=str(db)):
        store = Store.open(db, readonly=True)
        try:
            search(store, "filler")
        finally:
            store.close()


def test_a_database_path_under_a_file_is_a_monitor_error_naming_the_lock_file(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(MonitorError, match="cannot create the lock file .*not-a-folder"):
        DaemonLock(tmp_path / "not-a-folder" / "monitor.db").acquire()


# --------------------------------------------------------------------------
# a read-only database: the reading commands still read
# --------------------------------------------------------------------------

import subprocess  # noqa: E402


@pytest.fixture
def readonly_copy(tmp_path: Path):
    """A WAL database (no -wal or -shm left, as after a clean stop) in a folder nobody may
    write: chmod for a normal user; for root, a tmpfs remounted read-only."""
    source = _filled(tmp_path / "source.db")
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        (folder / "monitor.db").write_bytes(source.read_bytes())
        os.chmod(folder / "monitor.db", 0o400)
        os.chmod(folder, 0o500)
        yield folder / "monitor.db"
        os.chmod(folder, 0o700)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (folder / "monitor.db").write_bytes(source.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder / "monitor.db"
    finally:
        subprocess.run(["umount", str(folder)])


def test_a_read_only_database_can_still_be_read(readonly_copy: Path) -> None:
    assert readonly_copy.read_bytes()[18:20] == b"\x02\x02"  # a WAL database
    store = Store.open(readonly_copy, readonly=True)
    try:
        assert [state.name for state in store.feed_states()] == ["local"]
        assert len(store.list_stories()) == 1
        assert len(search(store, "filler")) == 1
    finally:
        store.close()
