"""monitor.toml: the settings tables ([fetch], [poll], [http], timezone, log_level) checked into records.

Apart from monitor.config.load (which reads the folder and checks feeds.toml)
so that each file's keys and their checks read as one table. The file is
optional: a missing one, or a missing key, means the defaults of
FetchSettings and PollSettings.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.config.check import Invalid, Source, describe, did_you_mean, duration, integer, number_text, unknown_key
from monitor.config.durations import format_duration
from monitor.errors import ConfigError
from monitor.models import FetchSettings, PollSettings

log = logging.getLogger("monitor.config.load")  # the config loader's warnings, whichever file they are about

LOG_LEVELS = ("debug", "info", "warning", "error")
POLITE_INTERVAL = 60.0  # shorter feed intervals are allowed, with a warning

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b)?\s*", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


# --------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------


def _fraction(low: float, high: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected a number from {low} to {high}, got {describe(value)}")
        if not low <= value <= high:
            raise Invalid(f"must be from {low} to {high}, got {number_text(value)}")
        return float(value)
    return check


def parse_size(value: str | int) -> int:
    """Bytes in '10MB', '512KB', '1GB', '2048B' or a plain integer (units are powers of 1024)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a size such as '10MB' or a number of bytes, got {describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {number_text(value)}")
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"invalid size {value!r}: expected a number with B, KB, MB or GB, such as '10MB'")
    unit = (match.group(2) or "b").lower().replace("i", "")
    return int(float(match.group(1)) * _SIZE_FACTORS[unit])


def _size(value: object) -> int:
    try:
        size = parse_size(value)  # type: ignore[arg-type]
    except ValueError as error:
        raise Invalid(str(error)) from None
    if size == 0:
        raise Invalid("must be larger than 0 bytes")
    return size


def _user_agent(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a non-empty string, got {describe(value)}")
    if any(char in value for char in "\r\n\0"):
        raise Invalid("must be a single line")
    return value


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected an IANA time zone name such as 'Europe/Kyiv', got {describe(value)}")
    if value == "UTC":
        return value
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown time zone {value!r}: use an IANA name such as 'UTC', "
                      "'Europe/Kyiv' or 'Asia/Hong_Kong'") from None
    return value


def _log_level(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected one of {', '.join(LOG_LEVELS)}, got {describe(value)}")
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise Invalid(f"unknown log level {value!r}{did_you_mean(level, LOG_LEVELS)}; "
                      f"expected one of {', '.join(LOG_LEVELS)}")
    return level


# --------------------------------------------------------------------------
# monitor.toml
# --------------------------------------------------------------------------

# TOML key -> (field of the settings record, check)
_FETCH_KEYS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "user_agent": ("user_agent", _user_agent),
    "connect_timeout": ("connect_timeout", duration(allow_zero=False)),
    "read_timeout": ("read_timeout", duration(allow_zero=False)),
    "deadline": ("deadline", duration(allow_zero=False)),
    "max_body": ("max_body_bytes", _size),
    "parse_timeout": ("parse_timeout", duration(allow_zero=True)),
    "max_redirects": ("max_redirects", integer(0, 100)),
    "global_limit": ("global_limit", integer(1, 10_000)),
    "per_host_limit": ("per_host_limit", integer(1, 1_000)),
}
_POLL_KEYS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "interval": ("default_interval", duration(allow_zero=False)),
    "jitter": ("jitter", _fraction(0.0, 0.5)),
    "backlog_window": ("backlog_window", duration(allow_zero=True)),
    "max_backoff": ("max_backoff", duration(allow_zero=False)),
    "retention": ("retention", duration(allow_zero=True)),
    "fetch_log_keep": ("fetch_log_keep", integer(1, 1_000_000)),
}


def _listen(value: object) -> tuple[str, int]:
    from monitor.config.listen import parse_listen
    from monitor.errors import UsageError

    if not isinstance(value, str):
        raise Invalid(f"expected an address string such as \"127.0.0.1:8080\", got {describe(value)}")
    try:
        return parse_listen(value)
    except UsageError as problem:
        raise Invalid(str(problem)) from None


_HTTP_KEYS = {"listen": ("listen", _listen)}
_SECTIONS = {"fetch": _FETCH_KEYS, "poll": _POLL_KEYS, "http": _HTTP_KEYS}
_TOP_KEYS = {"timezone": _timezone, "log_level": _log_level}


@dataclass(frozen=True)
class Settings:
    fetch: FetchSettings = FetchSettings()
    poll: PollSettings = PollSettings()
    timezone: str = "UTC"
    log_level: str = "info"
    http: tuple[str, int] | None = None


def check_settings(source: Source, data: dict[str, Any], errors: list[ConfigError]) -> Settings:
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {"fetch": {}, "poll": {}, "http": {}}
    section_of = {key: (f"{section}.{key}", "that section")
                  for section, keys in _SECTIONS.items() for key in keys}
    for key, value in data.items():
        if key in _TOP_KEYS:
            try:
                values[key] = _TOP_KEYS[key](value)
            except Invalid as problem:
                errors.append(source.error((key,), str(problem)))
        elif key in _SECTIONS:
            if isinstance(value, dict):
                sections[key] = _check_section(source, key, value, errors)
            else:
                errors.append(source.error((key,), f"expected a [{key}] table, got {describe(value)}"))
        else:
            errors.append(unknown_key(source, (), key, [*_TOP_KEYS, *_SECTIONS], section_of))
    return Settings(fetch=FetchSettings(**sections["fetch"]), poll=PollSettings(**sections["poll"]),
                     http=sections["http"].get("listen"), **values)


def _check_section(source: Source, section: str, table: dict[str, Any],
                   errors: list[ConfigError]) -> dict[str, Any]:
    known = _SECTIONS[section]
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            errors.append(unknown_key(source, (section,), key, list(known)))
            continue
        field_name, check = known[key]
        try:
            fields[field_name] = check(value)
        except Invalid as problem:
            errors.append(source.error((section, key), str(problem)))
    if section == "poll" and fields.get("default_interval", POLITE_INTERVAL) < POLITE_INTERVAL:
        log.warning("%s: poll.interval %s is under a minute: allowed, but it is hard on the servers",
                    source.path, format_duration(fields["default_interval"]))
    return fields
