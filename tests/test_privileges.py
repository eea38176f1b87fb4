"""A command started as root against another user's state leaves no root-owned files behind.

Switching user cannot be undone, so each case runs in its own interpreter,
which opens the real Store and DaemonLock after calling drop_to_owner.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
CHECKOUT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")

# importlib.metadata is imported lazily by sqlite-utils; imported up front because this
# interpreter may live under a root-only home (pyenv in /root) that nobody cannot read.
SCRIPT = """
import importlib.metadata, json, os, sys
from pathlib import Path
from monitor.store.lock import DaemonLock
from monitor.runtime.privileges import drop_to_owner
from monitor.store.database import Store

db, config, write = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "write"
switched = drop_to_owner(db, Path(config) if config else None)
files = {}
if write:
    with DaemonLock(db):
        store = Store.open(db)
        store.set_meta("checked", "yes")
        files = {p.name: [p.stat().st_uid, p.stat().st_gid] for p in db.parent.iterdir()}
        store.close()
print(json.dumps({"switched": switched, "uid": os.getuid(), "euid": os.geteuid(),
                  "gid": os.getgid(), "groups": os.getgroups(), "files": files}))
"""


def run_as_root(db: Path, config: Path | None = None, *, write: bool = True) -> dict:
    """The script in a fresh interpreter; its report of identity and the files it saw while open."""
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(db), str(config or ""),
                             "write" if write else "read"],
                            env=env, cwd="/", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder any user can traverse (pytest's own tmp folders are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="monitor-privileges-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder)


def owned_by_nobody(path: Path, mode: int = 0o700) -> Path:
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


def test_root_becomes_the_state_folders_owner_and_every_new_file_is_theirs(base):
    state = owned_by_nobody(base / "state")
    report = run_as_root(state / "monitor.db")
    assert report["switched"] is True
    assert (report["uid"], report["euid"], report["gid"]) == (NOBODY, NOBODY, NOBODY)
    assert 0 not in report["groups"]
    assert {"monitor.db", "monitor.db-wal", "monitor.db-shm", "monitor.db.lock"} <= set(report["files"])
    assert all(owner == [NOBODY, NOBODY] for owner in report["files"].values()), report["files"]
    left = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in state.iterdir()}
    assert left and all(owner == (NOBODY, NOBODY) for owner in left.values()), left


def test_the_database_files_owner_decides_in_a_shared_folder(base):
    shared = base / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    db = shared / "monitor.db"
    db.touch()
    os.chown(db, NOBODY, NOBODY)
    report = run_as_root(db)
    assert report["switched"] is True and report["uid"] == NOBODY
    assert all(owner == [NOBODY, NOBODY] for owner in report["files"].values()), report["files"]


def test_a_root_owned_state_stays_root(base):
    state = base / "state"
    state.mkdir()
    report = run_as_root(state / "monitor.db")
    assert report["switched"] is False and report["uid"] == 0
    assert report["files"]["monitor.db"] == [0, 0]


def test_without_a_database_folder_the_config_folders_owner_decides(base):
    config = owned_by_nobody(base / "config", 0o750)
    report = run_as_root(base / "missing" / "monitor.db", config, write=False)
    assert report["switched"] is True and report["uid"] == NOBODY


def test_nothing_existing_means_no_switch(base):
    report = run_as_root(base / "missing" / "monitor.db", base / "no-config", write=False)
    assert report["switched"] is False and report["uid"] == 0
