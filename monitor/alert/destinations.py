"""Where alerts go: alerts.toml, an optional apprise YAML file, and the secrets their URLs use.

alerts.toml holds an optional [settings] table (delivery policy) and one
[[destination]] table per apprise URL, with its routing tags and flood
control; the shipped file documents every key. A URL may write `${NAME}` for
a secret, looked up in secrets.toml (a flat `NAME = "value"` table in the
config folder), then in systemd's $CREDENTIALS_DIRECTORY/NAME, then in the
environment. An `apprise.yml` (or `apprise.yaml`) in the config folder is read
with apprise's own loader and adds one immediate destination per URL it holds.

Secrets never leave this module in clear text except in `Destination.url`,
which is for sending only: every message, warning and listing uses
`safe_url`, apprise's privacy form of the URL. apprise itself logs rejected
URLs verbatim, so its log records are kept out of every log while a URL is
checked here. apprise is imported inside the functions that need it: the
import costs a third of a second, which commands that send nothing should
not pay.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, Mapping
from urllib.parse import quote, unquote, urlsplit

from monitor.config import MAX_NAME_LENGTH, check_name, parse_toml, raise_errors, read_config_text
from monitor.configcheck import (
    Invalid,
    Source,
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
from monitor.errors import ConfigError
from monitor.masking import mask_query_values
from monitor.models import AlertSettings, Destination
from monitor.tomlpos import key_line

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

ALERTS_FILE = "alerts.toml"
SECRETS_FILE = "secrets.toml"
APPRISE_FILES = ("apprise.yml", "apprise.yaml")
MODES = ("immediate", "digest")
APPRISE_WIKI = "https://github.com/caronc/apprise/wiki"
MASK = "***"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_ANY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"]*")  # a password may hold a quote: mask past it
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|token|secret|key", re.IGNORECASE)
_GROUP_OR_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
_MIN_MASKED_SECRET = 4  # shorter substituted values are not hunted for in the shown URL


@dataclass(frozen=True)
class AlertsConfig:
    """The validated destinations and delivery settings of one config folder."""

    destinations: tuple[Destination, ...]
    settings: AlertSettings
    warnings: tuple[str, ...]  # e.g. a file holding secrets that group or others can read


# --------------------------------------------------------------------------
# apprise, quietly
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _apprise_log_held() -> Iterator[list[logging.LogRecord]]:
    """Hold back apprise's log records from this thread: it logs rejected URLs secrets and all.

    Records from other threads (a dispatcher sending meanwhile) pass untouched.
    The held records are yielded so a caller can count failures without
    ever showing their text.
    """
    logger = logging.getLogger("apprise")
    held: list[logging.LogRecord] = []
    thread = threading.get_ident()

    def hold(record: logging.LogRecord) -> bool:
        if record.thread == thread:
            held.append(record)
            return False
        return True

    logger.addFilter(hold)
    try:
        yield held
    finally:
        logger.removeFilter(hold)


def _service(url: str) -> NotifyBase | None:
    """apprise's plugin for URL, or None when apprise cannot use it."""
    import apprise

    with _apprise_log_held():
        try:
            return apprise.Apprise.instantiate(url)
        except Exception:  # a third-party parser fed user input: any failure means "cannot use"
            return None


def _privacy_form(service: NotifyBase) -> str:
    """apprise's privacy URL, with the values of custom headers (`+Name=`), GET parameters
    (`-name=`), payload fields (`:name=`) and secret-named parameters masked too."""
    return mask_query_values(service.url(privacy=True))


def _as_typed(typed: str, expanded: str, privacy: str) -> str:
    """The URL as the user typed it in alerts.toml (`${NAME}` left as written), with every
    part apprise's privacy form hides masked: a literal password or token, and the values
    of secret query parameters. Shown instead of apprise's expanded URL, whose added
    defaults (`overflow=upstream&retry=0...`) the user never wrote."""
    parts = urlsplit(expanded)
    pieces = re.split(r"[/@:]", parts.netloc + parts.path)
    pieces += [pair.partition("=")[2] for pair in parts.query.split("&")]
    hidden: set[str] = set()
    visible = privacy + " " + unquote(privacy)
    for piece in pieces:
        for form in (piece, unquote(piece)):
            if len(form) >= _MIN_MASKED_SECRET and form not in visible and "${" not in form:
                hidden.add(form)
    shown = typed
    for secret in sorted(hidden, key=len, reverse=True):
        shown = shown.replace(secret, MASK)
    return mask_query_values(shown)


def _fallback(url: str) -> str:
    """The only part of a URL apprise cannot read that is safe to show: its scheme."""
    scheme = _SCHEME.match(url)
    return f"{scheme.group(1).lower()}://{MASK}" if scheme else MASK


def safe_url(url: str) -> str:
    """URL in apprise's privacy form (passwords and tokens masked), for every output and log."""
    service = _service(url)
    return _privacy_form(service) if service is not None else _fallback(url)


def _masked(shown: str, secrets: Collection[str]) -> str:
    """SHOWN with every substituted secret value (as is and percent-encoded) replaced by ***.

    apprise masks what it knows to be secret; a `${NAME}` the user put in a
    part apprise shows (a topic, a path) is still a secret to the user.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_MASKED_SECRET:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                shown = shown.replace(form, MASK)
    return shown


def default_name(url: str) -> str:
    """A name from the service's scheme and host: "mailto-127.0.0.1", "json-localhost".

    The host is read from apprise's privacy form, so a token that sits in the
    host position (tgram://TOKEN/chat, discord://ID/TOKEN) is never used:
    such destinations are named after their scheme alone. The caller makes
    the name unique.
    """
    service = _service(url)
    shown = _privacy_form(service) if service is not None else _fallback(url)
    scheme = _SCHEME.match(shown)
    host = None
    if service is not None:
        try:
            host = urlsplit(shown).hostname
        except ValueError:
            host = None
    if host and ("..." in host or "*" in host):
        host = None
    words = f"{scheme.group(1) if scheme else 'destination'}-{host or ''}"
    name = re.sub(r"[^a-z0-9.]+", "-", words.lower()).strip("-.")
    return name[:MAX_NAME_LENGTH - 4] or "destination"


def unique_name(base: str, taken: Collection[str]) -> str:
    """BASE, or BASE-2, BASE-3... whichever is not in TAKEN (compared ignoring case)."""
    folded = {name.casefold() for name in taken}
    candidate, number = base, 2
    while candidate.casefold() in folded:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def url_problem(url: str) -> str | None:
    """Why apprise cannot send to URL (named in its masked form), or None when it can."""
    import apprise

    if _service(url) is not None:
        return None
    shown = _fallback(url)
    scheme = _SCHEME.match(url)
    if scheme is None:
        return (f"{shown!r} is not a notification URL: expected SCHEME://..., such as "
                f"'mailtos://user:password@mail.example.org' (see {APPRISE_WIKI})")
    name = scheme.group(1).lower()
    if name in ("http", "https"):  # a web address, not a destination: say which ones post to one
        host = urlsplit(url).hostname or "host"
        return (f"{shown!r} is a plain web address, not an apprise destination: to post alerts to "
                f"a web hook use json://{host}/PATH (JSON) or form://{host}/PATH (form fields), "
                f"json{name[4:]}:// and form{name[4:]}:// over HTTPS; see {APPRISE_WIKI}")
    known = apprise.NotificationManager()
    if name not in known:
        close = difflib.get_close_matches(name, list(known.schemas()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"apprise has no service for the scheme {name!r}{hint}; see {APPRISE_WIKI}"
    hint = ("; an email URL needs a sender apprise accepts: a user@domain login or from=ADDRESS"
            if name in ("mailto", "mailtos") else "")
    return (f"apprise cannot use {shown!r}: a part it needs is missing or malformed{hint}; "
            f"see {APPRISE_WIKI} for this service's URL format")


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
# positions and value checks
# --------------------------------------------------------------------------


def _context(source_line: str, column: int | None) -> str:
    """The line with every URL in it masked, and a caret under COLUMN."""
    shown = redact(_ANY_URL.sub(lambda match: _fallback(match.group()), source_line.rstrip("\r")))
    return f"    {shown}\n    {' ' * ((column or 1) - 1)}^"


@dataclass(frozen=True)
class _Source(Source):
    """alerts.toml or secrets.toml: the line shown under an error has every URL in it masked."""

    show_lines: bool = True  # False for secrets.toml, whose lines are the secrets

    def shown(self, message: str) -> str:
        """MESSAGE as written: the checks here redact the values that may hold a URL themselves."""
        return message

    def context_at(self, line: int, column: int | None) -> str | None:
        return _context(self.text.split("\n")[line - 1], column) if self.show_lines else None

    def parse(self) -> dict[str, Any]:
        """The TOML data; a syntax error keeps its position but shows the line masked (or not at all)."""
        try:
            return parse_toml(self.text, self.path)
        except ConfigError as error:
            context = self.context_at(error.line, error.column) if error.line is not None else None
            raise ConfigError(error.message, path=error.path, line=error.line, column=error.column,
                              context=context) from None


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
# secrets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Secrets:
    """Where `${NAME}` is looked up: secrets.toml, then systemd credentials, then the environment."""

    values: Mapping[str, str]
    credentials: Path | None
    env: Mapping[str, str]
    complete: bool = True  # False when secrets.toml could not be read: missing names prove nothing

    def lookup(self, name: str) -> str | None:
        if name in self.values:
            return self.values[name]
        if self.credentials is not None:
            path = self.credentials / name
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or "not UTF-8 text"
                raise Invalid(f"cannot read the systemd credential {path}: {reason}") from None
        return self.env.get(name)

    def expand(self, url: str) -> tuple[str, tuple[str, ...]]:
        """URL with every ${NAME} replaced, and the values used (to mask them wherever shown)."""
        names = list(dict.fromkeys(_REFERENCE.findall(url)))
        found = {name: self.lookup(name) for name in names}
        missing = [name for name, value in found.items() if value is None]
        if missing:
            listed = " and ".join(f"${{{name}}}" for name in missing)
            verb = "is" if len(missing) == 1 else "are"
            raise Invalid(f"{listed} {verb} not defined: set it in {SECRETS_FILE} in the config folder, "
                          "as a systemd credential (LoadCredential=) or in the environment")
        expanded = _REFERENCE.sub(lambda match: found[match.group(1)] or "", url)
        return expanded, tuple(value for value in found.values() if value)


def expand_secrets(url: str, config_dir: Path, env: Mapping[str, str]) -> str:
    """URL with each ${NAME} filled in; ValueError naming an undefined one (never a value)."""
    errors: list[ConfigError] = []
    secrets = _read_secrets(config_dir, env, errors, [])
    raise_errors(errors)
    try:
        return secrets.expand(url)[0]
    except Invalid as problem:
        raise ValueError(str(problem)) from None


def _exposure(path: Path) -> str | None:
    """'(mode 0644)' when group or others can read PATH, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return f"(mode {mode:04o})" if mode & _GROUP_OR_OTHERS_READ else None


def _read_secrets(config_dir: Path, env: Mapping[str, str], errors: list[ConfigError],
                  warnings: list[str]) -> _Secrets:
    credentials = Path(env["CREDENTIALS_DIRECTORY"]) if env.get("CREDENTIALS_DIRECTORY") else None
    path = config_dir / SECRETS_FILE
    try:
        text = read_config_text(path)
    except ConfigError as error:
        errors.append(error)
        return _Secrets({}, credentials, env, complete=False)
    if text is None:
        return _Secrets({}, credentials, env)
    exposed = _exposure(path)
    if exposed:
        warnings.append(f"{path} is readable by group/others {exposed}: chmod 600 it")
    source = _Source(path, text, show_lines=False)
    try:
        data = source.parse()
    except ConfigError as error:
        errors.append(error)
        return _Secrets({}, credentials, env, complete=False)
    values: dict[str, str] = {}
    for name, value in data.items():
        if not _SECRET_NAME.fullmatch(name):
            errors.append(source.error((name,), f"{name!r} cannot be used as ${{NAME}}: a secret's name is "
                                       "letters, digits and _, not starting with a digit", at_value=False))
        elif not isinstance(value, str):  # the type only: the value is the secret
            errors.append(source.error((name,), f"expected a string, got {type_name(value)}"))
        else:
            values[name] = value
    return _Secrets(values, credentials, env)


def _holds_literal_secret(raw_url: str, service: NotifyBase | None) -> bool:
    """Whether RAW_URL writes a password or token itself rather than through ${NAME}."""
    def literal(value: str) -> bool:
        return bool(value) and not _REFERENCE.fullmatch(value)

    try:
        parts = urlsplit(raw_url)
    except ValueError:
        return False
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo and literal(userinfo.split(":", 1)[1]):
        return True
    for pair in parts.query.split("&"):  # by hand: parse_qsl would read the "+" of "+Header" as a space
        name, _, value = (unquote(part) for part in pair.partition("="))
        if (_SECRET_QUERY_KEY.search(name) or name.startswith("+")) and literal(value):
            return True
    if _REFERENCE.search(raw_url) or service is None:
        return False
    return service.url(privacy=True) != service.url(privacy=False)  # a token in the host or path


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

    source: _Source
    secrets: _Secrets
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
        service = _service(expanded)
        if service is None:
            problem = url_problem(expanded)
            self.fail(path, f"{label}{_masked(problem or '', secrets)}", show_line=False)
            return {}
        if self.literal_secret_in is None and _holds_literal_secret(value, service):
            self.literal_secret_in = name or key_name(where)
        privacy = _masked(_privacy_form(service), secrets)
        return {"url": expanded, "safe_url": _as_typed(value, expanded, privacy)}

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
# apprise YAML
# --------------------------------------------------------------------------


def _read_apprise_file(config_dir: Path, taken: list[str], errors: list[ConfigError],
                       warnings: list[str]) -> list[Destination]:
    """One immediate destination per URL of apprise.yml, named uniquely after TAKEN."""
    present = [config_dir / name for name in APPRISE_FILES if (config_dir / name).is_file()]
    if not present:
        return []  # without importing apprise: a run that sends nothing never loads it
    import apprise

    if len(present) > 1:
        errors.append(ConfigError(f"both {APPRISE_FILES[0]} and {APPRISE_FILES[1]} exist: keep one",
                                  path=present[1]))
        return []
    path = present[0]
    exposed = _exposure(path)
    if exposed:
        warnings.append(f"{path} is readable by group/others {exposed}: chmod 600 it "
                        "(its URLs usually hold passwords or tokens)")
    loader = apprise.AppriseConfig()
    with _apprise_log_held() as held:
        loader.add(str(path))
        services = loader.services()
    failures = sum(1 for record in held if record.levelno >= logging.ERROR)
    if failures or not services:
        errors.append(_apprise_file_error(path, bool(failures)))
        return []
    destinations = []
    for service in services:
        url = service.url(privacy=False)
        name = unique_name(default_name(url), taken)
        taken.append(name)
        destinations.append(Destination(name=name, url=url, safe_url=_privacy_form(service),
                                        tags=tuple(sorted(str(tag) for tag in service.tags))))
    return destinations


def _apprise_file_error(path: Path, failures: bool) -> ConfigError:
    """What is wrong with apprise.yml, at its line when it can be found: the YAML syntax
    error, else the first URL apprise cannot use (masked, with the reason)."""
    import yaml  # apprise's own dependency, for the position of a syntax error

    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        context = _context(lines[line - 1], column) if line and line <= len(lines) else None
        return ConfigError(f"invalid YAML: {error.problem or error.context}", path=path, line=line,
                           column=column, context=context)
    except yaml.YAMLError as error:
        return ConfigError(f"invalid YAML: {error}", path=path)
    for number, source in enumerate(lines, start=1):
        for found in _ANY_URL.finditer(source):
            problem = url_problem(found.group().rstrip("'\","))
            if problem is not None:
                return ConfigError(problem, path=path, line=number, column=found.start() + 1,
                                   context=_context(source, found.start() + 1))
    return ConfigError(
        f"apprise could not read {'all of ' if failures else 'any URL from '}this file "
        "(an unknown key or a malformed URL); the details may hold secrets, so "
        f"see them with: apprise --dry-run -vv --config {path}", path=path)


# --------------------------------------------------------------------------
# the folder
# --------------------------------------------------------------------------


def parse_alerts_toml(text: str, path: Path) -> dict[str, Any]:
    """alerts.toml TEXT as data; a syntax error shows its line with every URL in it masked."""
    return _Source(path, text).parse()


def load_alerts(config_dir: Path, env: Mapping[str, str]) -> AlertsConfig:
    """The folder's destinations and settings; no alerts.toml means none and the defaults."""
    return validate_alerts_text(read_config_text(config_dir / ALERTS_FILE), config_dir, env)


def validate_alerts_text(text: str | None, config_dir: Path, env: Mapping[str, str]) -> AlertsConfig:
    """What alerts.toml TEXT (None = no file) means in CONFIG_DIR, or a ConfigError for every problem."""
    errors: list[ConfigError] = []
    warnings: list[str] = []
    secrets = _read_secrets(config_dir, env, errors, warnings)
    settings, destinations = AlertSettings(), []
    path = config_dir / ALERTS_FILE
    if text is not None:
        source = _Source(path, text)
        checker = _Checker(source, secrets, errors)
        try:
            settings, destinations = checker.check_document(source.parse())
        except ConfigError as error:
            errors.append(error)
        exposed = _exposure(path)
        if checker.literal_secret_in and exposed:
            warnings.append(f"{path} holds a password or token (destination {checker.literal_secret_in!r}) "
                            f"and is readable by group/others {exposed}: chmod 600 it, or move the secret "
                            f"to {SECRETS_FILE} and write ${{NAME}} in the URL")
    taken = [destination.name for destination in destinations]
    destinations += _read_apprise_file(config_dir, taken, errors, warnings)
    raise_errors(errors)
    return AlertsConfig(destinations=tuple(destinations), settings=settings, warnings=tuple(warnings))
