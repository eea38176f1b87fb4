"""Where alerts go: alerts.toml, checked into destinations and delivery settings.

alerts.toml holds an optional [settings] table (delivery policy) and one
[[destination]] table per apprise URL, with its routing tags and flood
control; the shipped file documents every key. Its URLs' `${NAME}` secrets
are filled in by monitor.alert.secrets, what apprise makes of them comes from
monitor.alert.apprise_urls, and an apprise.yml beside it adds destinations.

Secrets never leave these modules in clear text except in `Destination.url`,
which is for sending only: every message, warning and listing uses
`safe_url`, apprise's privacy form of the URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.alert.apprise_urls import (
    as_typed,
    privacy_form,
    read_apprise_file,
    service_for,
    url_problem,
)
from monitor.alert.secrets import (
    SECRETS_FILE,
    MaskedSource,
    Secrets,
    exposure,
    holds_literal_secret,
    mask_substituted,
    read_secrets,
)
from monitor.config.check import (
    Invalid,
    describe,
    did_you_mean,
    duration,
    entry_key_problems,
    integer,
    key_name,
    redact,
    string,
    type_name,
    unknown_key,
)
from monitor.config.load import check_name, raise_errors, read_config_text
from monitor.config.tomlpos import key_line
from monitor.errors import ConfigError
from monitor.models import AlertSettings, Destination

ALERTS_FILE = "alerts.toml"
MODES = ("immediate", "digest")

_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True)
class AlertsConfig:
    """The validated destinations and delivery settings of one config folder."""

    destinations: tuple[Destination, ...]
    settings: AlertSettings
    warnings: tuple[str, ...]  # e.g. a file holding secrets that group or others can read


# --------------------------------------------------------------------------
# checks shared with `monitor alerts add`
# --------------------------------------------------------------------------


def check_destination_name(name: str) -> str | None:
    """Why NAME cannot name a destination, or None if it can."""
    return check_name(name, "destination")


def check_clock(text: str) -> str | None:
    """Why TEXT is not a 24-hour HH:MM time, or None if it is."""
    if _CLOCK.fullmatch(text):
        return None
    return f"expected a 24-hour time such as \"08:00\" or \"22:30\" (HH:MM), got {text!r}"


# --------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------


def _duration(*, allow_zero: bool) -> Callable[[object], float]:
    """The shared duration check, its examples the short durations alert settings take."""
    return duration(allow_zero=allow_zero, expected="a duration such as '30s', '10m' or '6h'")


def _silence_factor(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected a number of feed intervals such as 10 (0 = off), got {describe(value)}")
    if value != 0 and not 1 <= value <= 1_000_000:
        raise Invalid(f"must be 0 (off) or at least 1 feed interval, got {value}")
    return float(value)


_clock = string('a 24-hour time such as "08:00"', check_clock)
_checked_name = string("a string", check_destination_name)

# --------------------------------------------------------------------------
# alerts.toml
# --------------------------------------------------------------------------

_SETTINGS: dict[str, Callable[[object], Any]] = {
    "max_age": _duration(allow_zero=False),
    "retry_base": _duration(allow_zero=False),
    "retry_cap": _duration(allow_zero=False),
    "grouping_delay": _duration(allow_zero=True),
    "duplicate_window": _duration(allow_zero=True),
    "send_timeout": _duration(allow_zero=False),
    "health_failures": integer(1),
    "health_silence": _silence_factor,
    "rate_limit": integer(0),
}
_DESTINATION_KEYS = ("name", "url", "tags", "mode", "digest_every", "digest_at", "quiet_hours",
                     "rate_limit", "rate_window")
_TOP_KEYS = ("settings", "destination")
# a key written in the wrong table -> where it belongs, for the hint
_BELONGS = {**{key: (f"settings.{key}", "[settings]") for key in _SETTINGS},
            **{key: (f"destination.{key}", "a [[destination]] table") for key in _DESTINATION_KEYS}}


@dataclass
class _Checker:
    """Checks one alerts.toml, collecting every problem rather than stopping at the first."""

    source: MaskedSource
    secrets: Secrets
    errors: list[ConfigError]
    names: dict[str, int] = field(default_factory=dict)  # casefolded name -> first destination using it
    literal_secret_in: str | None = None  # a destination whose URL writes a secret itself

    def fail(self, where: tuple[str | int, ...], message: str, **options: bool) -> None:
        self.errors.append(self.source.error(where, message, **options))

    def check_document(self, data: dict[str, Any]) -> tuple[AlertSettings, list[Destination]]:
        for key in data:
            if key not in _TOP_KEYS:
                self.errors.append(unknown_key(self.source, (), key, _TOP_KEYS, _BELONGS))
        settings = self.check_settings(data.get("settings", {}))
        entries = data.get("destination", [])
        if isinstance(entries, dict):
            self.fail(("destination",), "expected [[destination]] tables (double brackets, one per "
                      "destination), got a single [destination] table", at_value=False)
            return settings, []
        if not isinstance(entries, list):
            self.fail(("destination",), f"expected [[destination]] tables, got {describe(entries)}")
            return settings, []
        checked = [self.check_destination(index, entry) for index, entry in enumerate(entries)]
        return settings, [destination for destination in checked if destination is not None]

    def check_settings(self, table: object) -> AlertSettings:
        if not isinstance(table, dict):
            self.fail(("settings",), f"expected a [settings] table, got {describe(table)}")
            return AlertSettings()
        before = len(self.errors)
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in _SETTINGS:
                self.errors.append(unknown_key(self.source, ("settings",), key, list(_SETTINGS), _BELONGS))
                continue
            try:
                values[key] = _SETTINGS[key](value)
            except Invalid as problem:
                self.fail(("settings", key), redact(str(problem)))  # a URL pasted in the wrong key
        settings = AlertSettings(**values)
        if "retry_cap" in values and settings.retry_cap < settings.retry_base:
            self.fail(("settings", "retry_cap"), "must not be shorter than retry_base, the first retry delay")
        return settings if len(self.errors) == before else AlertSettings()

    def check_destination(self, index: int, entry: object) -> Destination | None:
        where: tuple[str | int, ...] = ("destination", index)
        if not isinstance(entry, dict):
            self.fail(where, f"expected a table with at least name and url, got {describe(entry)}")
            return None
        before = len(self.errors)
        self.errors.extend(entry_key_problems(self.source, where, entry, _DESTINATION_KEYS, _BELONGS))
        fields: dict[str, Any] = {}
        for key, check in (("name", _checked_name), ("mode", _mode),
                           ("digest_every", _duration(allow_zero=False)), ("digest_at", _clock),
                           ("quiet_hours", _quiet_hours), ("rate_limit", integer(1)),
                           ("rate_window", _duration(allow_zero=False)), ("tags", _tags)):
            if key in entry:
                try:
                    fields[key] = check(entry[key])
                except Invalid as problem:
                    self.fail(where + (key,), redact(str(problem)))  # a URL pasted in the wrong key
        timing = [key for key in ("digest_every", "digest_at") if key in entry]
        self.check_digest(where, fields.get("mode"), timing)
        if "url" in entry:
            fields.update(self.check_url(where, fields.get("name"), entry["url"]))
        if "name" in fields:
            self.check_unique(index, fields["name"])
        # no "url" without an error of its own: a ${NAME} that an unreadable secrets.toml may define
        return Destination(**fields) if len(self.errors) == before and "url" in fields else None

    def check_digest(self, where: tuple[str | int, ...], mode: str | None, timing: list[str]) -> None:
        """Mode digest needs exactly one of the TIMING keys present; immediate needs none."""
        if mode == "digest":
            if not timing:
                self.fail(where + ("mode",), 'mode "digest" needs digest_every (such as "6h") or '
                          'digest_at (such as "08:00")')
            elif len(timing) == 2:
                self.fail(where + ("digest_at",), "set digest_every or digest_at, not both")
        else:
            for key in timing:
                self.fail(where + (key,), f'{key} is only used with mode = "digest"')

    def check_url(self, where: tuple[str | int, ...], name: str | None, value: object) -> dict[str, str]:
        """The expanded URL and its safe form; errors name the destination, never show a secret."""
        path = where + ("url",)
        label = f"destination {name!r}: " if name else ""
        if not isinstance(value, str):
            self.fail(path, f"expected an apprise URL string, got {type_name(value)}", show_line=False)
            return {}
        try:
            expanded, secrets = self.secrets.expand(value)
        except Invalid as problem:
            if self.secrets.complete:
                self.fail(path, f"{label}{problem}", show_line=False)
            return {}
        service = service_for(expanded)
        if service is None:
            problem = url_problem(expanded)
            self.fail(path, f"{label}{mask_substituted(problem or '', secrets)}", show_line=False)
            return {}
        if self.literal_secret_in is None and holds_literal_secret(value, service):
            self.literal_secret_in = name or key_name(where)
        privacy = mask_substituted(privacy_form(service), secrets)
        return {"url": expanded, "safe_url": as_typed(value, expanded, privacy)}

    def check_unique(self, index: int, name: str) -> None:
        folded = name.casefold()
        if folded not in self.names:
            self.names[folded] = index
            return
        first = self.names[folded]
        line = key_line(self.source.text, ("destination", first, "name"))
        self.fail(("destination", index, "name"),
                  f"duplicate destination name {name!r}: destination[{first}]"
                  f"{f' on line {line}' if line else ''} already uses it (names are compared ignoring case)")


def _mode(value: object) -> str:
    if not isinstance(value, str) or value not in MODES:
        hint = did_you_mean(value, MODES) if isinstance(value, str) else ""
        raise Invalid(f"expected \"immediate\" or \"digest\", got {describe(value)}{hint}")
    return value


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag.strip() for tag in value):
        raise Invalid(f"expected a list of non-empty strings such as [\"drones\", \"admin\"], got "
                      f"{describe(value)}")
    return tuple(value)


def _quiet_hours(value: object) -> tuple[str, str]:
    if not isinstance(value, list) or len(value) != 2:
        raise Invalid(f"expected a start and an end time such as [\"22:00\", \"07:00\"], "
                      f"got {describe(value)}")
    start, end = (_clock(item) for item in value)
    if start == end:
        raise Invalid(f"the start and end of quiet hours are both {start!r}: give two different times")
    return start, end

# --------------------------------------------------------------------------
# the folder
# --------------------------------------------------------------------------


def parse_alerts_toml(text: str, path: Path) -> dict[str, Any]:
    """alerts.toml TEXT as data; a syntax error shows its line with every URL in it masked."""
    return MaskedSource(path, text).parse()


def load_alerts(config_dir: Path, env: Mapping[str, str]) -> AlertsConfig:
    """The folder's destinations and settings; no alerts.toml means none and the defaults."""
    return validate_alerts_text(read_config_text(config_dir / ALERTS_FILE), config_dir, env)


def validate_alerts_text(text: str | None, config_dir: Path, env: Mapping[str, str]) -> AlertsConfig:
    """What alerts.toml TEXT (None = no file) means in CONFIG_DIR, or a ConfigError for every problem."""
    errors: list[ConfigError] = []
    warnings: list[str] = []
    secrets = read_secrets(config_dir, env, errors, warnings)
    settings, destinations = AlertSettings(), []
    path = config_dir / ALERTS_FILE
    if text is not None:
        source = MaskedSource(path, text)
        checker = _Checker(source, secrets, errors)
        try:
            settings, destinations = checker.check_document(source.parse())
        except ConfigError as error:
            errors.append(error)
        exposed = exposure(path)
        if checker.literal_secret_in and exposed:
            warnings.append(f"{path} holds a password or token (destination {checker.literal_secret_in!r}) "
                            f"and is readable by group/others {exposed}: chmod 600 it, or move the secret "
                            f"to {SECRETS_FILE} and write ${{NAME}} in the URL")
    taken = [destination.name for destination in destinations]
    destinations += read_apprise_file(config_dir, taken, errors, warnings)
    raise_errors(errors)
    return AlertsConfig(destinations=tuple(destinations), settings=settings, warnings=tuple(warnings))
