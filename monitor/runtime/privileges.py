"""Run as the owner of the service's files when started as root.

An admin who types `sudo monitor status` or `sudo monitor run --once` against
the service's state would otherwise create `monitor.db-wal`, `-shm`, `.lock`
or a new config file owned by root, which the service (running as its own
user) then cannot open: the next start fails. Becoming the owner of those
files before anything is opened makes every file the command creates belong
to the same user as the service's.
"""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

from monitor.config.paths import DatabaseURL
from monitor.errors import MonitorError

logger = logging.getLogger(__name__)

ROOT_UID = 0


def owner_reference(db_path: Path | DatabaseURL, config_dir: Path | None = None) -> Path | None:
    """The existing path whose owner decides: the database, its folder, else the config folder
    (for a PostgreSQL database: the local folder of its caches, else the config folder)."""
    candidates = [db_path.parent] if isinstance(db_path, DatabaseURL) else [db_path, db_path.parent]
    if config_dir is not None:
        candidates.append(config_dir)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return None


def drop_to_owner(db_path: Path | DatabaseURL, config_dir: Path | None = None) -> bool:
    """Become the owner of the database (or its folder, or the config folder) when running as root.

    Returns True when the process switched user. Nothing changes when not
    root, when none of those paths exists yet, or when root owns the first
    one found. Must run before any file is opened: it cannot be undone.
    """
    if os.geteuid() != ROOT_UID:
        return False
    reference = owner_reference(db_path, config_dir)
    if reference is None:
        return False
    info = reference.stat()
    if info.st_uid == ROOT_UID:
        return False
    try:
        _become(info.st_uid, info.st_gid)
    except OSError as error:
        raise MonitorError(
            f"cannot switch to uid {info.st_uid}, the owner of {reference}, to avoid leaving root-owned "
            f"files there: {error.strerror or error}; run the command as that user instead"
        ) from None
    logger.debug("event=dropped_privileges uid=%d gid=%d owner_of=%s", os.getuid(), os.getgid(), reference)
    return True


def _become(uid: int, fallback_gid: int) -> None:
    """Switch groups first (only root may), then the user; the user's own groups if it has an account."""
    try:
        account = pwd.getpwuid(uid)
    except KeyError:
        os.setgroups([])
        os.setgid(fallback_gid)
    else:
        os.initgroups(account.pw_name, account.pw_gid)
        os.setgid(account.pw_gid)
    os.setuid(uid)
