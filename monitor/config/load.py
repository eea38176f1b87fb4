"""Read and validate the config folder: monitor.toml (settings) and feeds.toml (what to poll).

The TOML reading and the feeds.toml checks are here; monitor.toml's keys are
checked by monitor.config.settings.

Both files are optional: a missing monitor.toml means the defaults of
FetchSettings and PollSettings, a missing feeds.toml means no feeds. Every
problem becomes a ConfigError naming the file, the line, the key path (such
as `feed[2].url`) and what was expected; all problems of a load are reported
together so one edit-and-retry fixes them all.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# redact is imported from here too (by monitor.edit): it stays part of this module's API
from monitor.config.check import (
    Invalid,
    Source,
    describe,
    duration,
    entry_key_problems,
    redact,
    string,
    type_name,
    unknown_key,
)
from monitor.config.durations import format_duration
from monitor.config.settings import POLITE_INTERVAL, Settings, check_settings
from monitor.config.tomlpos import key_line
from monitor.errors import ConfigError, MonitorError
from monitor.models import FeedConfig, FetchSettings, PollSettings

log = logging.getLogger("monitor.config.load")

MONITOR_FILE = "monitor.toml"
FEEDS_FILE = "feeds.toml"
MAX_NAME_LENGTH = 100
# Headers the fetcher sets itself: overriding them would break conditional GET or bounded decompression.
MANAGED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                             "accept-encoding", "if-none-match", "if-modified-since"})

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Config:
    """Everything the config folder says, validated and converted to plain records."""

    dir: Path
    fetch: FetchSettings
    poll: PollSettings
    feeds: tuple[FeedConfig, ...]
    timezone: str  # IANA name
    log_level: str  # debug, info, warning or error
    http: tuple[str, int] | None = None  # [http] listen: where `monitor run` serves the web interface


class ConfigErrors(ConfigError):
    """Several configuration problems at once; behaves as the first for callers that want one."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, path=first.path, line=first.line, column=first.column,
                         key=first.key, context=first.context)

    def __str__(self) -> str:
        listed = "\n".join(str(error) for error in self.errors)
        return f"{len(self.errors)} problems in the configuration:\n{listed}"


def raise_errors(errors: Sequence[ConfigError]) -> None:
    """Raise nothing, the single error, or all of them as one ConfigErrors."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


# --------------------------------------------------------------------------
# locating problems in the source
# --------------------------------------------------------------------------


def _syntax_error(error: tomllib.TOMLDecodeError, source: Source) -> ConfigError:
    """tomllib's message carries '(at line L, column C)': move those into the error's fields."""
    message = str(error)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    line = column = None
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[:match.start()]
    elif message.endswith("(at end of document)"):
        message = message[: -len("(at end of document)")].rstrip()
        lines = source.text.rstrip("\n").split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    context = source.context_at(line, column) if line is not None else None
    return ConfigError(f"invalid TOML: {message}", path=source.path, line=line, column=column,
                       context=context)



def check_feed_url(url: str) -> str | None:
    """Why URL cannot be polled, or None if it can (http or https with a host)."""
    shown = redact(url)
    if url != url.strip():
        return f"URL {shown!r} has leading or trailing spaces"
    if any(char.isspace() or not char.isprintable() for char in url):
        return f"URL {shown!r} contains spaces or control characters: percent-encode them"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        return f"URL {shown!r} is not valid: {error}"
    if not parts.scheme:
        return f"URL {shown!r} has no scheme: write it in full, such as 'https://example.com/feed'"
    if parts.scheme.lower() not in ("http", "https"):
        return f"URL {shown!r} uses the unsupported scheme {parts.scheme!r}: only http and https feeds can be fetched"
    if not parts.hostname:
        return f"URL {shown!r} has no host, such as 'https://example.com/feed'"
    return None



# --------------------------------------------------------------------------
# feeds.toml
# --------------------------------------------------------------------------

_FEED_KEYS = ("name", "url", "interval", "language", "tags", "headers")


def check_name(name: str, kind: str = "feed") -> str | None:
    """Why NAME cannot name a KIND (feed, destination ...), or None if it can."""
    if not name.strip():
        return f"a {kind} name must not be empty"
    if name != name.strip():
        return f"{kind} name {name!r} has leading or trailing spaces"
    if not name.isprintable():
        return f"{kind} name {name!r} contains control characters"
    if len(name) > MAX_NAME_LENGTH:
        return f"a {kind} name must be at most {MAX_NAME_LENGTH} characters, this one has {len(name)}"
    return None


def check_feed_name(name: str) -> str | None:
    """Why NAME cannot name a feed, or None if it can."""
    return check_name(name, "feed")


def check_language(code: str) -> str | None:
    """Why CODE is not a language code such as 'en' or 'pt-BR', or None if it is."""
    if _LANGUAGE.fullmatch(code):
        return None
    return f"expected a language code such as 'en', 'uk' or 'ru', got {code!r}"


_check_name = string("a string", check_feed_name)
_check_url = string("a URL string such as 'https://example.com/feed'", check_feed_url)
_language_code = string("a language code such as 'en', 'uk' or 'ru'", check_language)


def _check_language(value: object) -> str:
    """A language code written one way whatever the file says: lower case, '-' between its parts."""
    return _language_code(value).lower().replace("_", "-")


class _FeedChecker:
    """Checks the [[feed]] tables of one feeds.toml, collecting every problem."""

    def __init__(self, source: Source, poll: PollSettings, errors: list[ConfigError]) -> None:
        self.source = source
        self.poll = poll
        self.errors = errors
        self.names: dict[str, int] = {}  # casefolded name -> index of the first feed using it
        self.urls: dict[str, int] = {}

    def check_document(self, data: dict[str, Any]) -> tuple[FeedConfig, ...]:
        for key in data:
            if key != "feed":
                self.errors.append(unknown_key(self.source, (), key, ["feed"]))
        entries = data.get("feed", [])
        if isinstance(entries, dict):
            self.errors.append(self.source.error(
                ("feed",), "expected [[feed]] tables (double brackets, one per feed), got a single [feed] table",
                at_value=False))
            return ()
        if not isinstance(entries, list):
            self.errors.append(self.source.error(("feed",), f"expected [[feed]] tables, got {describe(entries)}"))
            return ()
        feeds = [self.check_feed(index, entry) for index, entry in enumerate(entries)]
        return tuple(feed for feed in feeds if feed is not None)

    def _fail(self, path: tuple[str | int, ...], message: str, **options: bool) -> None:
        self.errors.append(self.source.error(path, message, **options))

    def check_feed(self, index: int, entry: object) -> FeedConfig | None:
        where: tuple[str | int, ...] = ("feed", index)
        if not isinstance(entry, dict):
            self._fail(where, f"expected a table with at least name and url, got {describe(entry)}")
            return None
        before = len(self.errors)
        self.errors.extend(entry_key_problems(self.source, where, entry, _FEED_KEYS))
        fields: dict[str, Any] = {"interval": self.poll.default_interval}
        for key, check in (("name", _check_name), ("url", _check_url), ("language", _check_language),
                           ("interval", duration(allow_zero=False))):
            if key in entry:
                try:
                    fields[key] = check(entry[key])
                except Invalid as problem:
                    self._fail(where + (key,), str(problem))
        fields["tags"] = self.check_tags(where, entry.get("tags", []))
        fields["headers"] = self.check_headers(where, entry.get("headers", {}))
        self.check_unique(index, fields)
        if len(self.errors) > before:
            return None
        feed = FeedConfig(**fields)
        if feed.interval < POLITE_INTERVAL:
            log.warning("%s: feed %r polls every %s, under a minute: allowed, but it is hard on the server",
                        self.source.path, feed.name, format_duration(feed.interval))
        return feed

    def check_tags(self, where: tuple[str | int, ...], tags: object) -> tuple[str, ...]:
        if not isinstance(tags, list):
            self._fail(where + ("tags",), f"expected a list of strings such as [\"news\"], got {describe(tags)}")
            return ()
        for position, tag in enumerate(tags):
            if not isinstance(tag, str) or not tag.strip():
                self._fail(where + ("tags", position), f"expected a non-empty string, got {describe(tag)}")
        return tuple(tags)

    def check_headers(self, where: tuple[str | int, ...], headers: object) -> dict[str, str]:
        """Header tables often hold credentials: errors name the header, never show its value."""
        path = where + ("headers",)
        if not isinstance(headers, dict):
            self._fail(path, f"expected a table of header names to strings, got {describe(headers)}")
            return {}
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                self._fail(path + (name,), f"{name!r} is not a valid HTTP header name", at_value=False,
                           show_line=False)
            elif name.lower() in MANAGED_HEADERS:
                self._fail(path + (name,), f"header {name!r} is set by monitor itself and cannot be "
                           "configured per feed", at_value=False, show_line=False)
            elif not isinstance(value, str):
                self._fail(path + (name,), f"expected a string value, got {type_name(value)}",
                           show_line=False)
            elif any(char in value for char in "\r\n\0"):
                self._fail(path + (name,), "a header value must be a single line", show_line=False)
        return dict(headers)

    def check_unique(self, index: int, fields: dict[str, Any]) -> None:
        name = fields.get("name")
        if isinstance(name, str):
            folded = name.casefold()
            if folded in self.names:
                first = self.names[folded]
                line = key_line(self.source.text, ("feed", first, "name"))
                self._fail(("feed", index, "name"), f"duplicate feed name {name!r}: feed[{first}]"
                           f"{f' on line {line}' if line else ''} already uses it (names are compared "
                           "ignoring case)")
            else:
                self.names[folded] = index
        url = fields.get("url")
        if isinstance(url, str):
            if url in self.urls:
                log.warning("%s: feed[%d] and feed[%d] poll the same URL %s", self.source.path,
                            self.urls[url], index, redact(url))
            self.urls.setdefault(url, index)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """TEXT parsed as TOML; a syntax error becomes a ConfigError at its line and column."""
    return _parse(Source(path, text))


def _parse(source: Source) -> dict[str, Any]:
    try:
        return tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(error, source) from None
    except ValueError:  # tomllib lets int()'s digit limit escape as a bare ValueError
        digits = re.search(r"\d{4000,}", source.text)
        line = source.text.count("\n", 0, digits.start()) + 1 if digits else None
        raise ConfigError("invalid TOML: a number has too many digits", path=source.path, line=line) from None


def validate_feeds_text(text: str, path: Path, poll: PollSettings) -> tuple[FeedConfig, ...]:
    """The feeds in feeds.toml TEXT (as if read from PATH), or a ConfigError for every problem."""
    source = Source(path, text)
    errors: list[ConfigError] = []
    feeds = _FeedChecker(source, poll, errors).check_document(_parse(source))
    raise_errors(errors)
    return feeds


# --------------------------------------------------------------------------
# the folder
# --------------------------------------------------------------------------


def read_config_text(path: Path) -> str | None:
    """A config file's text (UTF-8, a leading BOM dropped), or None if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}", path=path) from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ConfigError(f"the file is not UTF-8 text (bad byte at offset {error.start})",
                          path=path, line=line) from None


def load_config(config_dir: Path) -> Config:
    """The validated config folder; ConfigError (or ConfigErrors) naming every problem found."""
    if not config_dir.exists():
        raise ConfigError(f"the config folder does not exist; create it with `monitor init {config_dir}`",
                          path=config_dir)
    if not config_dir.is_dir():
        raise ConfigError("expected a config folder, but this is a file", path=config_dir)
    errors: list[ConfigError] = []
    settings = Settings()
    feeds: tuple[FeedConfig, ...] = ()
    try:
        settings = _read_settings(config_dir / MONITOR_FILE, errors)
    except ConfigError as error:
        errors.append(error)
    try:
        feeds = _read_feeds(config_dir / FEEDS_FILE, settings.poll)
    except ConfigErrors as many:
        errors.extend(many.errors)
    except ConfigError as error:
        errors.append(error)
    raise_errors(errors)
    return Config(dir=config_dir, fetch=settings.fetch, poll=settings.poll, feeds=feeds,
                  timezone=settings.timezone, log_level=settings.log_level, http=settings.http)


def _read_settings(path: Path, errors: list[ConfigError]) -> Settings:
    """monitor.toml's settings (defaults if the file is missing); problems go to ERRORS."""
    text = read_config_text(path)
    if text is None:
        return Settings()
    source = Source(path, text)
    found: list[ConfigError] = []
    settings = check_settings(source, _parse(source), found)
    errors.extend(found)
    return Settings() if found else settings


def _read_feeds(path: Path, poll: PollSettings) -> tuple[FeedConfig, ...]:
    text = read_config_text(path)
    return () if text is None else validate_feeds_text(text, path, poll)


CLUSTER_FILES = ("monitor.toml", "feeds.toml", "watch.toml", "alerts.toml")  # secrets.toml stays on each node


def folder_files(folder: Path) -> dict[str, str]:
    """The files that make a config folder, by name (templates/NAME for a template), for
    `monitor config push`; secrets.toml is not among them: each node keeps its own."""
    files = {name: (folder / name).read_text(encoding="utf-8")
             for name in CLUSTER_FILES if (folder / name).is_file()}
    templates = folder / "templates"
    if templates.is_dir():
        files.update({f"templates/{path.name}": path.read_text(encoding="utf-8")
                      for path in sorted(templates.iterdir()) if path.is_file()})
    return files


def files_version(files: dict[str, str]) -> str:
    """A short digest of a config folder's files: two nodes with the same one run the same config."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:12]


def folder_version(folder: Path) -> str:
    """`files_version` of the folder's files (an unreadable file counts as absent)."""
    try:
        return files_version(folder_files(folder))
    except (OSError, UnicodeDecodeError):
        return "unreadable"


def write_folder(files: dict[str, str], folder: Path, *, secrets_from: Path | None = None) -> None:
    """A config folder made of FILES (a pushed version), with this node's own secrets.toml."""
    (folder / "templates").mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        if path.parent not in (folder, folder / "templates"):
            raise MonitorError(f"a pushed config names a file outside its folder: {name!r}")
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    if secrets_from is not None and (secrets_from / "secrets.toml").is_file():
        (folder / "secrets.toml").write_bytes((secrets_from / "secrets.toml").read_bytes())
        (folder / "secrets.toml").chmod(0o600)
