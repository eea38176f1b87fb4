"""What every command needs: where the config and database are, loaded lazily."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.output import echo_jsonl, echo_table, escape_controls, is_tty  # noqa: F401 (re-exported)
from monitor.config.paths import (
    DatabaseLocation,
    DatabaseURL,
    ensure_config_dir,
    resolve_config_dir,
    resolve_db_path,
)
from monitor.errors import UsageError

if TYPE_CHECKING:
    from monitor.config.load import Config


@dataclass
class App:
    """Resolved locations plus a lazily loaded, validated config."""

    config_flag: str | None
    db_flag: str | None
    log_level: str | None = None
    config_typed: bool = False  # --config given on the command line (not from $MONITOR_CONFIG)
    _config: Config | None = field(default=None, repr=False)

    @property
    def config_dir(self) -> Path:
        path, source = resolve_config_dir(self.config_flag, os.environ)
        if self.config_typed and not path.is_dir():  # a typo must not silently show another setup
            problem = "is not a folder" if path.exists() else "does not exist"
            raise UsageError(f"--config {path} {problem} (create one with `monitor init {path}`)")
        if ensure_config_dir(path, source):
            click.echo(f"monitor: created the default config folder {path}", err=True)
        return path

    @property
    def db_path(self) -> DatabaseLocation:
        return resolve_db_path(self.db_flag, os.environ)

    def config(self) -> Config:
        """The validated config; a ConfigError reaches the user as file:line: message."""
        if self._config is None:
            from monitor.config.load import load_config  # not for --help: a light start

            self._config = load_config(self.config_dir)
            if self.log_level is None:
                logging.getLogger("monitor").setLevel(self._config.log_level.upper())
        return self._config


class KeyValueFormatter(logging.Formatter):
    """One line per event: `ts=... level=... logger=... msg`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = escape_controls(record.getMessage(), cell=True)  # one line, no terminal controls
        line = f"ts={ts[:-4]}Z level={record.levelname.lower()} logger={record.name} {message}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


_C1 = re.compile(r"[\x7f-\x9f]")  # json escapes C0 itself
_KEY = re.compile(r"(?<!\S)([a-z_][a-z0-9_]*)=")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_RESERVED = ("ts", "level", "logger", "msg", "exc")


def message_fields(message: str) -> dict[str, Any]:
    """A `text key=value key=value` log message as {"msg": text, key: value, ...}.

    A value runs to the next ` key=`; a quoted one (`error='...'`) is unquoted,
    a number becomes a number. The same fields the kv format shows.
    """
    keys = list(_KEY.finditer(message))
    fields: dict[str, Any] = {"msg": message[:keys[0].start()].strip() if keys else message}
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(message)
        value: Any = message[key.end():end].strip()
        if value[:1] in ("'", '"') and value[-1:] == value[:1]:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
        elif _NUMBER.fullmatch(value):
            value = float(value) if "." in value else int(value)
        name = key.group(1)
        fields[f"field_{name}" if name in _RESERVED else name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: each key=value of the message its own key."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = {"ts": ts[:-4] + "Z", "level": record.levelname.lower(), "logger": record.name,
                **message_fields(record.getMessage())}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False))


def setup_logging(level: str, fmt: str = "kv") -> None:
    """Log lines to stderr (journald takes them): key=value, or JSON with fmt="json"."""
    root = logging.getLogger("monitor")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.propagate = False
    root.setLevel(level.upper())
    # APScheduler reports job failures through its own loggers: same format, warnings up.
    scheduler = logging.getLogger("apscheduler")
    for old in list(scheduler.handlers):
        scheduler.removeHandler(old)
    scheduler.addHandler(handler)
    scheduler.propagate = False
    scheduler.setLevel(logging.WARNING)
    # Any other library's warnings (apprise's send failures, asyncio's) reach the root
    # logger: the same format there too, never Python's bare last-resort line.
    base = logging.getLogger()
    for old in [h for h in base.handlers if getattr(h, "monitor_handler", False)]:
        base.removeHandler(old)
    handler.monitor_handler = True  # type: ignore[attr-defined]  # ours to replace on the next call
    base.addHandler(handler)
    if base.level > logging.WARNING or base.level == logging.NOTSET:
        base.setLevel(logging.WARNING)


def iso(value: datetime | str | None) -> str | None:
    """ISO 8601 UTC with a Z, the one time format every listing uses."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tell_daemon(app: App, *, quiet: bool = False) -> None:
    """After an edit: SIGHUP the daemon on this database, and say in one wording when the
    change applies (every editing command uses this)."""
    from monitor.cli.output import emit
    from monitor.store.lock import signal_daemon

    if isinstance(app.db_path, DatabaseURL):
        from monitor.edit.push import push_if_clustered

        pushed = push_if_clustered(app.config_dir, app.db_path)
        if pushed is not None and not quiet:
            emit(f"pushed as config version {pushed.version}: every worker runs it within seconds")
    try:
        pid = signal_daemon(app.db_path)
    except OSError as error:  # e.g. the daemon runs as another user
        emit(f"could not signal the daemon ({(error.strerror or str(error)).lower()}); changes apply "
             "at its next reload (systemctl reload monitor, or kill -HUP PID) or start", err=quiet)
        return
    if quiet:
        return
    if pid is not None:
        emit(f"told the running daemon (pid {pid}) to reload: changes apply now")
    else:
        emit("no daemon is running on this database; changes apply at its next reload or start")
