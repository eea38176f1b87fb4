"""What every command needs: where the config and database are, loaded lazily."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import click

from monitor.paths import ensure_config_dir, resolve_config_dir, resolve_db_path


if TYPE_CHECKING:
    from monitor.config import Config


@dataclass
class App:
    """Resolved locations plus a lazily loaded, validated config."""

    config_flag: str | None
    db_flag: str | None
    log_level: str | None = None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config_dir(self) -> Path:
        path, source = resolve_config_dir(self.config_flag, os.environ)
        if ensure_config_dir(path, source):
            click.echo(f"monitor: created the default config folder {path}", err=True)
        return path

    @property
    def db_path(self) -> Path:
        return resolve_db_path(self.db_flag, os.environ)

    def config(self) -> Config:
        """The validated config; a ConfigError reaches the user as file:line: message."""
        if self._config is None:
            from monitor.config import load_config  # not for --help: a light start

            self._config = load_config(self.config_dir)
            if self.log_level is None:
                logging.getLogger("monitor").setLevel(self._config.log_level.upper())
        return self._config


class KeyValueFormatter(logging.Formatter):
    """One line per event: `ts=... level=... logger=... msg`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"ts={ts[:-4]}Z level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = {"ts": ts[:-4] + "Z", "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


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


def is_tty() -> bool:
    return sys.stdout.isatty()


def echo_jsonl(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain aligned table; bold headers only on a terminal."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    header = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    click.echo(click.style(header, bold=True) if is_tty() else header)
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def iso(value: datetime | str | None) -> str | None:
    """ISO 8601 UTC with a Z, the one time format every listing uses."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
