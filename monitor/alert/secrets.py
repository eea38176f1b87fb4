"""Secrets of alert URLs: where `${NAME}` is looked up, and how a URL is kept from showing one.

A URL in alerts.toml may write `${NAME}` for a secret, looked up in
secrets.toml (a flat `NAME = "value"` table in the config folder), then in
systemd's $CREDENTIALS_DIRECTORY/NAME, then in the environment. This module
is apart from the alerts.toml checks so that everything that handles a
secret's value (reading it, substituting it, masking it in what is shown)
sits in one place that can be audited alone. It never imports apprise.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from monitor.config.check import Invalid, Source, redact, type_name
from monitor.config.load import parse_toml, raise_errors, read_config_text
from monitor.errors import ConfigError
from monitor.masking import MASK

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

SECRETS_FILE = "secrets.toml"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
URL_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://")
ANY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"]*")  # a password may hold a quote: mask past it
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|token|secret|key", re.IGNORECASE)
_GROUP_OR_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
MIN_MASKED_SECRET = 4  # shorter substituted values are not hunted for in the shown URL


# --------------------------------------------------------------------------
# masking what is shown
# --------------------------------------------------------------------------


def url_pieces(url: str) -> list[str]:
    """The parts of URL any of which may be a secret: user, password, host and path segments,
    and query values, as written (split by hand: parse_qsl would turn "+" and "%20" into spaces)."""
    parts = urlsplit(url)
    pieces = re.split(r"[/@:]", parts.netloc + parts.path)
    return pieces + [pair.partition("=")[2] for pair in parts.query.split("&")]


def fallback_form(url: str) -> str:
    """The only part of a URL apprise cannot read that is safe to show: its scheme."""
    scheme = URL_SCHEME.match(url)
    return f"{scheme.group(1).lower()}://{MASK}" if scheme else MASK


def mask_substituted(shown: str, secrets: Collection[str]) -> str:
    """SHOWN with every substituted secret value (as is and percent-encoded) replaced by ***.

    apprise masks what it knows to be secret; a `${NAME}` the user put in a
    part apprise shows (a topic, a path) is still a secret to the user.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_MASKED_SECRET:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                shown = shown.replace(form, MASK)
    return shown


def masked_context(source_line: str, column: int | None) -> str:
    """The line with every URL in it masked, and a caret under COLUMN."""
    shown = redact(ANY_URL.sub(lambda match: fallback_form(match.group()), source_line.rstrip("\r")))
    return f"    {shown}\n    {' ' * ((column or 1) - 1)}^"


@dataclass(frozen=True)
class MaskedSource(Source):
    """alerts.toml or secrets.toml: the line shown under an error has every URL in it masked."""

    show_lines: bool = True  # False for secrets.toml, whose lines are the secrets

    def shown(self, message: str) -> str:
        """MESSAGE as written: the checks here redact the values that may hold a URL themselves."""
        return message

    def context_at(self, line: int, column: int | None) -> str | None:
        return masked_context(self.text.split("\n")[line - 1], column) if self.show_lines else None

    def parse(self) -> dict[str, Any]:
        """The TOML data; a syntax error keeps its position but shows the line masked (or not at all)."""
        try:
            return parse_toml(self.text, self.path)
        except ConfigError as error:
            context = self.context_at(error.line, error.column) if error.line is not None else None
            raise ConfigError(error.message, path=error.path, line=error.line, column=error.column,
                              context=context) from None


# --------------------------------------------------------------------------
# secrets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
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
    secrets = read_secrets(config_dir, env, errors, [])
    raise_errors(errors)
    try:
        return secrets.expand(url)[0]
    except Invalid as problem:
        raise ValueError(str(problem)) from None


def exposure(path: Path) -> str | None:
    """'(mode 0644)' when group or others can read PATH, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return f"(mode {mode:04o})" if mode & _GROUP_OR_OTHERS_READ else None


def read_secrets(config_dir: Path, env: Mapping[str, str], errors: list[ConfigError],
                  warnings: list[str]) -> Secrets:
    credentials = Path(env["CREDENTIALS_DIRECTORY"]) if env.get("CREDENTIALS_DIRECTORY") else None
    path = config_dir / SECRETS_FILE
    try:
        text = read_config_text(path)
    except ConfigError as error:
        errors.append(error)
        return Secrets({}, credentials, env, complete=False)
    if text is None:
        return Secrets({}, credentials, env)
    exposed = exposure(path)
    if exposed:
        warnings.append(f"{path} is readable by group/others {exposed}: chmod 600 it")
    source = MaskedSource(path, text, show_lines=False)
    try:
        data = source.parse()
    except ConfigError as error:
        errors.append(error)
        return Secrets({}, credentials, env, complete=False)
    values: dict[str, str] = {}
    for name, value in data.items():
        if not _SECRET_NAME.fullmatch(name):
            errors.append(source.error((name,), f"{name!r} cannot be used as ${{NAME}}: a secret's name is "
                                       "letters, digits and _, not starting with a digit", at_value=False))
        elif not isinstance(value, str):  # the type only: the value is the secret
            errors.append(source.error((name,), f"expected a string, got {type_name(value)}"))
        else:
            values[name] = value
    return Secrets(values, credentials, env)


def holds_literal_secret(raw_url: str, service: NotifyBase | None) -> bool:
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
