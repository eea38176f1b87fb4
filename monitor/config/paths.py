"""Where the config folder and the database live, and how a config folder is created.

The config folder is the source of truth for what is watched; the shipped
defaults (`config/` in a checkout, `monitor/defaults/` once installed) are
only ever copied, never edited in place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.config.tomlpos import key_line
from monitor.errors import MonitorError, UsageError
from monitor.masking import mask_url

DIR_MODE = 0o700  # the config may hold credentials (feed headers, alert URLs)
FILE_MODE = 0o600
FEEDS_FILE = "feeds.toml"
NO_FEEDS_NOTE = (
    "# No feeds yet. Add one with `monitor feeds add URL`, or copy the example\n"
    "# above and remove the leading '# '.\n"
)


def shipped_defaults_dir() -> Path:
    """The default config folder: installed as monitor/defaults, in a checkout <repo>/config."""
    package_dir = Path(__file__).resolve().parents[1]
    installed = package_dir / "defaults"
    if installed.is_dir():
        return installed
    return package_dir.parent / "config"


def _first_path(value: str | None) -> str | None:
    """The first entry of a systemd-style ':'-separated list; None when unset or empty."""
    if not value:
        return None
    first = value.split(":")[0]
    return first or None


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _xdg_dir(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    """An XDG base directory; relative values are invalid by the spec and ignored."""
    value = env.get(variable)
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(env) / fallback


def resolve_config_dir(flag: str | None, env: Mapping[str, str]) -> tuple[Path, str]:
    """(folder, source): --config, then MONITOR_CONFIG, then systemd's CONFIGURATION_DIRECTORY, then XDG."""
    if flag:
        return Path(flag).expanduser(), "flag"
    if env.get("MONITOR_CONFIG"):
        return Path(env["MONITOR_CONFIG"]).expanduser(), "env"
    systemd = _first_path(env.get("CONFIGURATION_DIRECTORY"))
    if systemd:
        return Path(systemd), "systemd"
    return _xdg_dir(env, "XDG_CONFIG_HOME", ".config") / "monitor", "xdg"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class DatabaseURL:
    """A PostgreSQL database named by --db or MONITOR_DB (`postgresql://...`).

    It stands where a SQLite file's path stands: `str()` shows it with its
    password masked (for messages, logs, status), `parent` is the local folder
    for what lives beside a SQLite file (the watch's word cache), and it always
    `exists()`: the server holds it, and opening it says if it cannot be reached.
    """

    url: str
    parent: Path

    def exists(self) -> bool:
        return True

    def __str__(self) -> str:
        return mask_url(self.url)


DatabaseLocation = Path | DatabaseURL  # a SQLite file, or a PostgreSQL database


def resolve_db_path(flag: str | None, env: Mapping[str, str]) -> DatabaseLocation:
    """The database: --db, then MONITOR_DB, then systemd's STATE_DIRECTORY, then the XDG data home;
    a `postgresql://` URL names a PostgreSQL database instead of a SQLite file."""
    named = flag or env.get("MONITOR_DB")
    if named and named.startswith(POSTGRES_SCHEMES):
        return DatabaseURL(named, _default_state_dir(env))
    if named:
        return Path(named).expanduser()
    return _default_state_dir(env) / "monitor.db"


def _default_state_dir(env: Mapping[str, str]) -> Path:
    state = _first_path(env.get("STATE_DIRECTORY"))
    if state:
        return Path(state)
    return _xdg_dir(env, "XDG_DATA_HOME", ".local/share") / "monitor"


def ensure_config_dir(path: Path, source: str) -> bool:
    """Create the XDG config folder from the shipped defaults on first use; True if created.

    Only the implicit XDG location is created: a folder named by --config, the
    environment or systemd that does not exist is a mistake to report, not to
    paper over. The copy is built beside the target and renamed into place, so
    two processes starting at once cannot leave a half-written folder.
    """
    if source != "xdg" or path.exists():
        return False
    try:
        return _create_from_defaults(path)
    except OSError as error:
        raise MonitorError(f"cannot create the config folder {path}: {error.strerror or error}") from None


def _create_from_defaults(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))  # mode 0700
    try:
        _write_defaults(staging, no_feeds=False)
        try:
            staging.rename(path)
        except OSError:
            if path.is_dir():  # another process won the race
                return False
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return True


def init_config_dir(target: Path, *, force: bool = False, no_feeds: bool = False) -> list[Path]:
    """Write the complete commented default config folder into TARGET; the files written."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"cannot create a config folder at {target}: it is a file")
    if target.is_dir() and any(target.iterdir()) and not force:
        present = ", ".join(sorted(child.name for child in target.iterdir())[:5])
        raise UsageError(
            f"refusing to write into {target}: the folder is not empty (it holds {present}); "
            "use --force to overwrite the default files in it"
        )
    try:
        if not target.exists():
            target.mkdir(parents=True, mode=DIR_MODE)
            os.chmod(target, DIR_MODE)
        return _write_defaults(target, no_feeds=no_feeds)
    except OSError as error:
        raise MonitorError(f"cannot write the config folder {target}: {error.strerror or error}") from None


def default_file_text(name: str, *, no_feeds: bool = False) -> str:
    """The shipped text of one default file; feeds.toml with NO_FEEDS keeps only its comments."""
    text = (shipped_defaults_dir() / name).read_text(encoding="utf-8")
    if no_feeds and name == FEEDS_FILE:
        return strip_feed_entries(text)
    return text


def strip_feed_entries(text: str) -> str:
    """The documentation before the first [[feed]] (without that feed's own comment) plus a note."""
    lines = text.splitlines(keepends=True)
    header = key_line(text, ("feed", 0))
    start = len(lines) if header is None else header - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    head = "".join(lines[:start]).rstrip("\n")
    return (head + "\n\n" if head else "") + NO_FEEDS_NOTE


def _write_defaults(target: Path, *, no_feeds: bool) -> list[Path]:
    defaults = shipped_defaults_dir()
    if not defaults.is_dir():
        raise MonitorError(f"the default configuration is missing from this installation ({defaults}): "
                           "reinstall monitor")
    written = []
    for source in sorted(defaults.iterdir()):
        if not source.is_file() or source.name.startswith("."):
            continue
        destination = target / source.name
        atomic_write_text(destination, default_file_text(source.name, no_feeds=no_feeds), mode=FILE_MODE)
        written.append(destination)
    return written


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace PATH with TEXT so that a reader sees the old file or the new one, never half.

    The temporary file lives in the same folder (so the rename is atomic), gets
    the original's permissions (MODE, or 0600 for a new file) before any byte is
    written, and is fsynced before the rename. A symlink is followed, so the
    file it points at is replaced rather than the link.
    """
    target = path.resolve() if path.is_symlink() else path
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = FILE_MODE
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some filesystems refuse, which is harmless."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
