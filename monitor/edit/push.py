"""`monitor config push`: the config folder becomes the cluster's newest config version.

The folder is checked first exactly as a reload checks it (feeds, monitor.toml,
watch.toml, alerts.toml and the templates); a folder with a mistake is refused with
its file and line, and the version the workers run stays. Workers LISTEN for new
versions and reload within seconds (monitor.runtime.worker)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.config.load import files_version, folder_files, load_config
from monitor.config.paths import DatabaseURL
from monitor.errors import UsageError


@dataclass(frozen=True)
class Pushed:
    version: int
    digest: str
    new: bool  # False: the newest version already held these files


def push_folder(folder: Path, location: DatabaseURL, now: datetime | None = None) -> Pushed:
    """Check FOLDER (ConfigError on a mistake) and store it as the newest version at LOCATION."""
    if not isinstance(location, DatabaseURL):
        raise UsageError(f"a config is pushed to a cluster's PostgreSQL database (--db postgresql://...), "
                         f"not to the SQLite file {location}")
    from monitor.ingest.prepare import prepare
    from monitor.store import configs
    from monitor.store.database import Store

    prepare(load_config(folder), log_warnings=False)  # everything a reload checks
    files = folder_files(folder)
    digest = files_version(files)
    store = Store.open(location)
    try:
        version, new = configs.push(store, files, digest, now=now or datetime.now(UTC),
                                    source=f"{socket.gethostname()}:{folder}")
    finally:
        store.close()
    return Pushed(version, digest, new)


def push_if_clustered(folder: Path, location: DatabaseURL) -> Pushed | None:
    """After an edit of FOLDER (CLI or web): push it when the cluster runs pushed configs, so
    the edit reaches every worker; None when nothing was pushed before (workers read their folders)."""
    from monitor.store import configs
    from monitor.store.database import Store

    store = Store.open(location)  # a new database gets its tables: it has no pushed version yet
    try:
        clustered = configs.latest(store) is not None
    finally:
        store.close()
    return push_folder(folder, location) if clustered else None
