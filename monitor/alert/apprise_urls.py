"""What apprise makes of a destination URL: whether it can send to it, its privacy form, a name.

apprise is imported inside the functions that need it: the import costs a
third of a second, which commands that send nothing should not pay. apprise
itself logs rejected URLs verbatim, so its log records are kept out of every
log while a URL is checked here. An `apprise.yml` (or `apprise.yaml`) in the
config folder is read with apprise's own loader and adds one immediate
destination per URL it holds.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from monitor.alert.secrets import (
    ANY_URL,
    MIN_MASKED_SECRET,
    URL_SCHEME,
    exposure,
    fallback_form,
    masked_context,
    url_pieces,
)
from monitor.config.load import MAX_NAME_LENGTH
from monitor.errors import ConfigError
from monitor.masking import MASK, mask_query_values
from monitor.models import Destination

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

APPRISE_FILES = ("apprise.yml", "apprise.yaml")
APPRISE_WIKI = "https://github.com/caronc/apprise/wiki"


@contextlib.contextmanager
def apprise_log_held() -> Iterator[list[logging.LogRecord]]:
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


def service_for(url: str) -> NotifyBase | None:
    """apprise's plugin for URL, or None when apprise cannot use it."""
    import apprise

    with apprise_log_held():
        try:
            return apprise.Apprise.instantiate(url)
        except Exception:  # a third-party parser fed user input: any failure means "cannot use"
            return None


def privacy_form(service: NotifyBase) -> str:
    """apprise's privacy URL, with the values of custom headers (`+Name=`), GET parameters
    (`-name=`), payload fields (`:name=`) and secret-named parameters masked too."""
    return mask_query_values(service.url(privacy=True))


def as_typed(typed: str, expanded: str, privacy: str) -> str:
    """The URL as the user typed it in alerts.toml (`${NAME}` left as written), with every
    part apprise's privacy form hides masked: a literal password or token, and the values
    of secret query parameters. Shown instead of apprise's expanded URL, whose added
    defaults (`overflow=upstream&retry=0...`) the user never wrote."""
    hidden: set[str] = set()
    visible = privacy + " " + unquote(privacy)
    for piece in url_pieces(expanded):
        for form in (piece, unquote(piece)):
            if len(form) >= MIN_MASKED_SECRET and form not in visible and "${" not in form:
                hidden.add(form)
    shown = typed
    for secret in sorted(hidden, key=len, reverse=True):
        shown = shown.replace(secret, MASK)
    return mask_query_values(shown)


def safe_url(url: str) -> str:
    """URL in apprise's privacy form (passwords and tokens masked), for every output and log."""
    service = service_for(url)
    return privacy_form(service) if service is not None else fallback_form(url)


def default_name(url: str) -> str:
    """A name from the service's scheme and host: "mailto-127.0.0.1", "json-localhost".

    The host is read from apprise's privacy form, so a token that sits in the
    host position (tgram://TOKEN/chat, discord://ID/TOKEN) is never used:
    such destinations are named after their scheme alone. The caller makes
    the name unique.
    """
    service = service_for(url)
    shown = privacy_form(service) if service is not None else fallback_form(url)
    scheme = URL_SCHEME.match(shown)
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

    if service_for(url) is not None:
        return None
    shown = fallback_form(url)
    scheme = URL_SCHEME.match(url)
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
# apprise YAML
# --------------------------------------------------------------------------


def read_apprise_file(config_dir: Path, taken: list[str], errors: list[ConfigError],
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
    exposed = exposure(path)
    if exposed:
        warnings.append(f"{path} is readable by group/others {exposed}: chmod 600 it "
                        "(its URLs usually hold passwords or tokens)")
    loader = apprise.AppriseConfig()
    with apprise_log_held() as held:
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
        destinations.append(Destination(name=name, url=url, safe_url=privacy_form(service),
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
        context = masked_context(lines[line - 1], column) if line and line <= len(lines) else None
        return ConfigError(f"invalid YAML: {error.problem or error.context}", path=path, line=line,
                           column=column, context=context)
    except yaml.YAMLError as error:
        return ConfigError(f"invalid YAML: {error}", path=path)
    for number, source in enumerate(lines, start=1):
        for found in ANY_URL.finditer(source):
            problem = url_problem(found.group().rstrip("'\","))
            if problem is not None:
                return ConfigError(problem, path=path, line=number, column=found.start() + 1,
                                   context=masked_context(source, found.start() + 1))
    return ConfigError(
        f"apprise could not read {'all of ' if failures else 'any URL from '}this file "
        "(an unknown key or a malformed URL); the details may hold secrets, so "
        f"see them with: apprise --dry-run -vv --config {path}", path=path)
