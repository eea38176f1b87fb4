"""watch.toml: entities, term groups and rules, parsed and validated.

Every mistake a person can make while editing the file becomes a ConfigError
that names the file, the line, the key and, for queries and aliases, the
column with the source line and a caret under the spot. The format itself is
documented in `monitor.match`.
"""

from __future__ import annotations

import bisect
import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config.tomlpos import key_line, value_column
from monitor.errors import ConfigError
from monitor.languages import language_code
from monitor.match.query import Node, QueryError, Ref, parse_query, query_warnings, true_without_hits, walk
from monitor.match.text import TermError, check_term

SEVERITIES = ("info", "warning", "critical")
_NAME = re.compile(r"[\w-]+")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = " (at end of document)"

KeyPath = tuple["str | int", ...]


@dataclass(frozen=True)
class Entity:
    """Something to watch for, by its names in every language (aliases)."""

    name: str
    aliases: tuple[str, ...]
    exclude: tuple[str, ...] = ()  # phrases inside which an alias hit does not count
    description: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Group:
    """A reusable list of keywords (drone parts, sanctions words...)."""

    name: str
    terms: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    description: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    query: str
    description: str = ""
    min_score: float = 0.0
    severity: str = "info"
    tags: tuple[str, ...] = ()
    enabled: bool = True
    feeds: tuple[str, ...] = ()  # scope: feed names; empty = every feed
    feed_tags: tuple[str, ...] = ()  # scope: feeds carrying any of these tags
    languages: tuple[str, ...] = ()  # scope: entry languages (primary subtag, lower case)
    line: int | None = None  # line of the query in watch.toml
    tree: Node | None = field(default=None, compare=False, repr=False)  # parsed query


@dataclass(frozen=True)
class Watch:
    entities: Mapping[str, Entity] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    fold_diacritics: bool = False
    path: Path | None = None


_TOP_KEYS = ("entity", "group", "rule", "options")
_OPTION_KEYS = ("fold_diacritics",)
_ENTITY_KEYS = ("aliases", "exclude", "description")
_GROUP_KEYS = ("terms", "exclude", "description")
_RULE_KEYS = ("query", "description", "min_score", "severity", "tags", "enabled",
              "feeds", "feed_tags", "languages")


def load_watch(path: Path) -> Watch:
    """Read and validate watch.toml; a missing file is an empty watch (nothing flagged)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Watch(path=path)
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text (byte {error.start})", path=path) from None
    except OSError as error:
        raise ConfigError(f"cannot read the watch file: {error.strerror}", path=path) from None
    return parse_watch_text(text, path)


def parse_watch_text(text: str, path: Path) -> Watch:
    """Validate watch.toml source TEXT (attributed to PATH in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        if position is not None:
            line, column = int(position.group(1)), int(position.group(2))
            raise ConfigError(f"invalid TOML: {message[:position.start()]}", path=path, line=line,
                              column=column, context=_caret(text, line, column)) from None
        if message.endswith(_AT_END):  # e.g. an unclosed string: blame the last line with text
            line = len(text.rstrip().split("\n"))
            raise ConfigError(f"invalid TOML: {message.removesuffix(_AT_END)} at the end of the file",
                              path=path, line=line, context=_caret(text, line, None)) from None
        raise ConfigError(f"invalid TOML: {message}", path=path) from None
    except ValueError:  # tomllib lets int()'s digit limit escape as a bare ValueError
        digits = re.search(r"\d{4000,}", text)
        line = text.count("\n", 0, digits.start()) + 1 if digits else None
        raise ConfigError("invalid TOML: a number has too many digits", path=path, line=line,
                          context=_caret(text, line, None) if line else None) from None
    return _Loader(text, Path(path)).watch(data)


class _Loader:
    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path

    # -- errors ------------------------------------------------------------

    def fail(self, message: str, key: KeyPath, *, at_value: bool = True) -> ConfigError:
        """An error about the key at KEY, with a caret under its value when it has one."""
        line = key_line(self.text, key)
        column = value_column(self.text, line) if line is not None and at_value else None
        context = _caret(self.text, line, column) if line is not None else None
        return ConfigError(message, path=self.path, line=line, column=column,
                           key=_dotted(key), context=context)

    def fail_inside(self, message: str, key: KeyPath, string: str, offset: int) -> ConfigError:
        """An error at character OFFSET of the string value at KEY (a query or an alias)."""
        line = key_line(self.text, key)
        if line is None:
            return ConfigError(message, path=self.path, key=_dotted(key), context=_pointed(string, offset))
        place = _string_char_position(self.text, line, string, offset)
        column = place[1] if place else value_column(self.text, line)
        line = place[0] if place else line
        return ConfigError(message, path=self.path, line=line, column=column, key=_dotted(key),
                           context=_caret(self.text, line, column))

    # -- typed values --------------------------------------------------------

    def table(self, value: Any, key: KeyPath, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"must be a table ({what}), not {_kind(value)}", key)
        return value

    def known_keys(self, table: Mapping[str, Any], allowed: Sequence[str], key: KeyPath) -> None:
        for name in table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(allowed)})"
                raise self.fail(f"unknown key '{name}'{hint}", key + (name,), at_value=False)

    def string(self, table: Mapping[str, Any], name: str, key: KeyPath, default: str | None = None) -> str:
        value = table.get(name, default)
        if value is None:
            raise self.fail(f"'{name}' is required", key, at_value=False)
        if not isinstance(value, str):
            raise self.fail(f"must be a string, not {_kind(value)}", key + (name,))
        return value

    def strings(self, table: Mapping[str, Any], name: str, key: KeyPath) -> tuple[str, ...]:
        value = table.get(name, [])
        if not isinstance(value, list):
            raise self.fail(f"must be a list of strings, not {_kind(value)}", key + (name,))
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"must be a string, not {_kind(item)}", key + (name, index), at_value=False)
        return tuple(value)

    def terms(self, table: Mapping[str, Any], name: str, key: KeyPath, *, required: bool) -> tuple[str, ...]:
        if required and name not in table:
            raise self.fail(f"'{name}' is required: a list of words or phrases", key, at_value=False)
        values = self.strings(table, name, key)
        if required and not values:
            raise self.fail(f"'{name}' must list at least one word or phrase", key + (name,))
        for index, term in enumerate(values):
            try:
                check_term(term)
            except TermError as error:
                raise self.fail_inside(error.message, key + (name, index), term, error.offset) from None
        return values

    def boolean(self, table: Mapping[str, Any], name: str, key: KeyPath, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, not {_kind(value)}", key + (name,))
        return value

    def number(self, table: Mapping[str, Any], name: str, key: KeyPath, default: float) -> float:
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"must be a number, not {_kind(value)}", key + (name,))
        if value < 0:
            raise self.fail("must not be negative", key + (name,))
        return float(value)

    def named_tables(self, data: Mapping[str, Any], section: str, what: str) -> dict[str, dict[str, Any]]:
        tables = self.table(data.get(section, {}), (section,), f"[{section}.NAME] sections")
        for name, body in tables.items():
            if not _NAME.fullmatch(name):
                raise self.fail(f"the name {name!r} may only hold letters, digits, '_' and '-'"
                                " (queries refer to it by name)", (section, name), at_value=False)
            self.table(body, (section, name), what)
        return tables

    # -- sections ------------------------------------------------------------

    def watch(self, data: Mapping[str, Any]) -> Watch:
        self.known_keys(data, _TOP_KEYS, ())
        options = self.table(data.get("options", {}), ("options",), "[options]")
        self.known_keys(options, _OPTION_KEYS, ("options",))
        entities = {name: self.entity(name, body)
                    for name, body in self.named_tables(data, "entity", "an entity").items()}
        groups = {name: self.group(name, body)
                  for name, body in self.named_tables(data, "group", "a term group").items()}
        known = {"entity": entities, "group": groups}
        rules = tuple(self.rule(name, body, known)
                      for name, body in self.named_tables(data, "rule", "a rule").items())
        return Watch(entities=entities, groups=groups, rules=rules,
                     fold_diacritics=self.boolean(options, "fold_diacritics", ("options",), False),
                     path=self.path)

    def entity(self, name: str, body: Mapping[str, Any]) -> Entity:
        key: KeyPath = ("entity", name)
        self.known_keys(body, _ENTITY_KEYS, key)
        return Entity(name=name, aliases=self.terms(body, "aliases", key, required=True),
                      exclude=self.terms(body, "exclude", key, required=False),
                      description=self.string(body, "description", key, ""),
                      line=key_line(self.text, key))

    def group(self, name: str, body: Mapping[str, Any]) -> Group:
        key: KeyPath = ("group", name)
        self.known_keys(body, _GROUP_KEYS, key)
        return Group(name=name, terms=self.terms(body, "terms", key, required=True),
                     exclude=self.terms(body, "exclude", key, required=False),
                     description=self.string(body, "description", key, ""),
                     line=key_line(self.text, key))

    def rule(self, name: str, body: Mapping[str, Any], known: Mapping[str, Mapping[str, object]]) -> Rule:
        key: KeyPath = ("rule", name)
        self.known_keys(body, _RULE_KEYS, key)
        query = self.string(body, "query", key)
        tree = self.rule_query(query, key + ("query",), known)
        severity = self.string(body, "severity", key, "info")
        if severity not in SEVERITIES:
            close = difflib.get_close_matches(severity.lower(), SEVERITIES, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise self.fail(f"unknown severity {severity!r} ({hint}use one of: {', '.join(SEVERITIES)})",
                            key + ("severity",))
        return Rule(
            name=name, query=query, tree=tree, severity=severity,
            description=self.string(body, "description", key, ""),
            min_score=self.number(body, "min_score", key, 0.0),
            tags=self.strings(body, "tags", key),
            enabled=self.boolean(body, "enabled", key, True),
            feeds=self.strings(body, "feeds", key),
            feed_tags=self.strings(body, "feed_tags", key),
            languages=tuple(language_code(code) for code in self.strings(body, "languages", key)),
            line=key_line(self.text, key + ("query",)),
        )

    def rule_query(self, query: str, key: KeyPath, known: Mapping[str, Mapping[str, object]]) -> Node:
        rule = key[1]
        try:
            tree = parse_query(query)
        except QueryError as error:
            raise self.fail_inside(f"rule '{rule}': {error.message}", key, query, error.offset) from None
        for node in walk(tree):
            if isinstance(node, Ref) and node.name not in known[node.kind]:
                sigil = "@" if node.kind == "entity" else "#"
                close = difflib.get_close_matches(node.name, list(known[node.kind]), n=1)
                hint = f" (did you mean {sigil}{close[0]}?)" if close else ""
                raise self.fail_inside(f"rule '{rule}': unknown {node.kind} {sigil}{node.name}{hint}",
                                       key, query, node.start)
        if true_without_hits(tree):
            raise self.fail_inside(f"rule '{rule}': the query holds for texts that contain none of its"
                                   " terms (only NOT); add a term to look for", key, query, 0)
        return tree


# -- warnings ------------------------------------------------------------------


def watch_warnings(watch: Watch) -> list[str]:
    """`file:line:col: rule 'x': ...` for each query that parses but likely says something
    else than meant (a lower-case `or` read as a word); shown by `rules check`,
    `config check` and on reload."""
    text = ""
    if watch.path is not None:
        try:
            text = watch.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    lines = []
    for rule in watch.rules:
        for warning in query_warnings(rule.query):
            place = (_string_char_position(text, rule.line, rule.query, warning.offset)
                     if text and rule.line else None)
            where = f"{watch.path}:{place[0]}:{place[1]}" if place else f"{watch.path}"
            lines.append(f"{where}: rule '{rule.name}': {warning.message}")
    return lines


# -- positions inside the source ------------------------------------------------


def _dotted(key: KeyPath) -> str | None:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or None


def _kind(value: object) -> str:
    names: dict[type, str] = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
                              list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _caret(text: str, line: int, column: int | None) -> str:
    """The source LINE, and a caret under COLUMN when there is one."""
    lines = text.split("\n")
    source = lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""
    if column is None:
        return source
    return f"{source}\n{_pad(source[:column - 1])}^"


def _pointed(string: str, offset: int) -> str:
    return f"{string}\n{_pad(string[:offset])}^"


def _pad(before: str) -> str:
    """Blanks as wide as BEFORE, keeping its tabs so the caret lines up."""
    return "".join("\t" if char == "\t" else " " for char in before)


def _string_char_position(text: str, line: int, string: str, offset: int) -> tuple[int, int] | None:
    """(line, column) of character OFFSET of the TOML string whose value is STRING and
    which starts on LINE (the value of a key, or an array element); None if it is not found."""
    line_starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    if not 1 <= line <= len(line_starts):
        return None
    column = value_column(text, line)
    candidates = [column] if column is not None else []
    source = text[line_starts[line - 1]:line_starts[line] - 1 if line < len(line_starts) else len(text)]
    candidates += [i + 1 for i, char in enumerate(source) if char in "'\""]
    for candidate in candidates:
        offsets = _decoded_offsets(text, line_starts[line - 1] + candidate - 1)
        if offsets is not None and _spells(text, offsets, string):
            place = offsets[min(offset, len(string))]
            row = bisect.bisect_right(line_starts, place)
            return row, place - line_starts[row - 1] + 1
    return None


def _decoded_offsets(text: str, start: int) -> list[int] | None:
    """Source offset of each character of the TOML string literal at START, plus its end.

    Knows the four TOML string forms and their escapes, so a caret lands under
    the right character even after a \\" or in a multi-line query."""
    delimiter = next((d for d in ('"""', "'''", '"', "'") if text.startswith(d, start)), None)
    if delimiter is None:
        return None
    basic, multiline = delimiter[0] == '"', len(delimiter) == 3
    position = start + len(delimiter)
    if multiline:
        position += 2 if text.startswith("\r\n", position) else 1 if text.startswith("\n", position) else 0
    offsets: list[int] = []
    while position < len(text) and not text.startswith(delimiter, position):
        char = text[position]
        if char == "\n" and not multiline:
            return None
        if multiline and text.startswith("\r\n", position):  # TOML reads a CRLF line break as "\n"
            offsets.append(position)
            position += 2
            continue
        if basic and char == "\\":
            following = text[position + 1:position + 2]
            if multiline and following in (" ", "\t", "\r", "\n"):
                position = _skip_line_continuation(text, position + 1)
                continue
            offsets.append(position)
            position += {"u": 6, "U": 10}.get(following, 2)
            continue
        offsets.append(position)
        position += 1
    offsets.append(position)
    return offsets


def _skip_line_continuation(text: str, position: int) -> int:
    """After a line-ending backslash in a \"\"\" string: skip blanks and newlines."""
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _spells(text: str, offsets: list[int], string: str) -> bool:
    """Whether the literal at OFFSETS decodes to STRING (escapes taken on trust, CRLF read as "\\n")."""
    if len(offsets) != len(string) + 1:
        return False
    return all(text[at] in ("\\", char) or text.startswith("\r\n", at) and char == "\n"
               for at, char in zip(offsets, string, strict=False))
