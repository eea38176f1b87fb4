"""`monitor terms ...` and `monitor rules enable|disable`: edit watch.toml without breaking it.

watch.toml is written by hand and heavily commented, so an edit goes through
tomlkit, which keeps every comment and every untouched byte. Each edit is a
read-modify-write under a lock on the config folder (two commands at once
cannot lose each other's change), and the new text must pass two checks
before it replaces the file atomically (same permissions):

* it means exactly the old data with the one intended change (tomllib is the
  judge, so a tomlkit quirk can never slip an unintended change in), and
* the watch loader accepts it: an alias that cannot match anything, or
  removing an entity's last alias, is refused with the loader's reason.

A refused edit leaves the file byte-identical.
"""

from __future__ import annotations

import copy
import difflib
import fcntl
import os
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
import tomlkit.items

from monitor.config.load import read_config_text
from monitor.config.paths import atomic_write_text
from monitor.errors import ConfigError, MonitorError, UsageError
from monitor.match.watch import load_watch, parse_watch_text

__all__ = ["add_aliases", "add_exclude", "list_terms", "remove_aliases", "set_rule_enabled"]

_FALLBACK_INDENT = "    "  # for a multi-line array with no item starting a line


def list_terms(watch_path: Path, entity: str | None = None) -> list[dict[str, Any]]:
    """The entities of the watch (or the one named, ignoring case) with their aliases and exclusions."""
    watch = load_watch(watch_path)
    names = list(watch.entities)
    if entity is not None:
        if not watch_path.exists():
            raise UsageError(f"no entity {entity!r}: {watch_path} does not exist")
        names = [_resolve(names, entity, "entity", watch_path, others=list(watch.groups))]
    # Each alias once, as first written: a name listed twice in watch.toml matches the same.
    return [{"entity": name, "aliases": list(dict.fromkeys(watch.entities[name].aliases)),
             "exclude": list(dict.fromkeys(watch.entities[name].exclude)),
             "description": watch.entities[name].description} for name in names]


def add_aliases(watch_path: Path, entity: str, aliases: Sequence[str]) -> list[str]:
    """Append ALIASES to the entity's list, each on its own line in a multi-line list;
    the ones added (those already there, as written, are skipped)."""
    with _editing(watch_path) as edit:
        name = edit.resolve("entity", entity)
        present = edit.strings("entity", name, "aliases")
        added = [alias for alias in dict.fromkeys(aliases) if alias not in present]
        if added:
            edit.append("entity", name, "aliases", added, after=None)
            edit.commit(f"adding {_quoted(added)} to entity {name!r}")
        return added


def remove_aliases(watch_path: Path, entity: str, aliases: Sequence[str]) -> list[str]:
    """Remove every occurrence of ALIASES (as written) from the entity; the ones removed."""
    with _editing(watch_path) as edit:
        name = edit.resolve("entity", entity)
        present = edit.strings("entity", name, "aliases")
        removed = [alias for alias in dict.fromkeys(aliases) if alias in present]
        if not removed:
            raise UsageError(f"entity {name!r} has no alias {_quoted(aliases)}"
                             f"{_close_hint(aliases, present)}")
        if all(alias in removed for alias in present):
            raise UsageError(f"cannot remove every alias of entity {name!r}: an entity needs at least one "
                             "(to drop the entity, delete it and the rules that use it from "
                             f"{watch_path} by hand)")
        edit.remove("entity", name, "aliases", removed)
        edit.commit(f"removing {_quoted(removed)} from entity {name!r}")
        return removed


def add_exclude(watch_path: Path, entity: str, phrase: str) -> bool:
    """Add PHRASE to the entity's `exclude` list (created after `aliases` if missing); False if there."""
    with _editing(watch_path) as edit:
        name = edit.resolve("entity", entity)
        if phrase in edit.strings("entity", name, "exclude"):
            return False
        edit.append("entity", name, "exclude", [phrase], after="aliases")
        edit.commit(f"excluding {phrase!r} for entity {name!r}")
        return True


def set_rule_enabled(watch_path: Path, rule: str, enabled: bool) -> bool:
    """Switch a rule on or off; True if the file changed.

    A missing `enabled` means on, so enabling such a rule changes nothing and
    disabling it adds `enabled = false` right after its query."""
    with _editing(watch_path) as edit:
        name = edit.resolve("rule", rule)
        current = edit.data["rule"][name].get("enabled", True)
        if current is enabled:
            return False
        edit.set_value("rule", name, "enabled", enabled, after="query")
        edit.commit(f"{'enabling' if enabled else 'disabling'} rule {name!r}")
        return True


# --------------------------------------------------------------------------
# one edit
# --------------------------------------------------------------------------


@contextmanager
def _editing(path: Path) -> Iterator[_WatchEdit]:
    """A _WatchEdit of PATH, holding the folder's edit lock from the read to the write."""
    with _folder_lock(path.parent):
        yield _WatchEdit.read(path)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """flock on the folder itself: the file is replaced by a rename, so a lock on it would not hold."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:
        raise UsageError(f"the config folder {folder} does not exist") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class _WatchEdit:
    """The file's text and tomlkit document, its data before, and the data the edit must produce."""

    def __init__(self, path: Path, text: str, document: tomlkit.TOMLDocument, data: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.document = document
        self.data = data
        self.expected = copy.deepcopy(data)
        self.newline = "\r\n" if "\r\n" in text else "\n"  # new lines follow the file's line endings

    @classmethod
    def read(cls, path: Path) -> _WatchEdit:
        text = read_config_text(path)
        if text is None:
            raise UsageError(f"{path} does not exist: there is no watch to edit "
                             "(`monitor init DIR` writes a commented example)")
        try:
            document = tomlkit.parse(text)
            data = tomllib.loads(text)
        except (tomlkit.exceptions.TOMLKitError, tomllib.TOMLDecodeError):  # the loader locates the mistake
            parse_watch_text(text, path)
            raise ConfigError("cannot parse the file for editing; fix it by hand", path=path) from None
        if tomlkit.dumps(document) != text:
            raise _unusual_layout(path)
        return cls(path, text, document, data)

    # -- reading -------------------------------------------------------------

    def resolve(self, section: str, wanted: str) -> str:
        """The [SECTION.NAME] table's name as written, found ignoring case."""
        tables = self.data.get(section)
        names = list(tables) if isinstance(tables, dict) else []
        others = self.data.get("group") if section == "entity" else None
        name = _resolve(names, wanted, section, self.path,
                        others=list(others) if isinstance(others, dict) else [])
        if not isinstance(tables[name], dict):
            raise self._current_error() or _unusual_layout(self.path)
        return name

    def strings(self, section: str, name: str, key: str) -> list[str]:
        """The list of strings at [section.name].key (empty if absent); a located error if it is not one."""
        value = self.data[section][name].get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._current_error() or _unusual_layout(self.path)
        return value

    # -- changing --------------------------------------------------------------

    def append(self, section: str, name: str, key: str, values: Sequence[str], *, after: str | None) -> None:
        table = self._table(section, name)
        if key in table:
            array = table[key]
            if not isinstance(array, tomlkit.items.Array):
                raise _unusual_layout(self.path)
            for value in values:
                _append_item(array, value, self.newline)
        else:
            created = tomlkit.array()
            created.extend(values)
            _insert_key(table, key, created, after=after, newline=self.newline)
        body = self.expected[section][name]
        body[key] = [*body.get(key, []), *values]

    def remove(self, section: str, name: str, key: str, values: Sequence[str]) -> None:
        array = self._table(section, name)[key]
        if not isinstance(array, tomlkit.items.Array):
            raise _unusual_layout(self.path)
        for value in values:
            while value in array:
                array.remove(value)  # tomlkit drops the item's line, with its comment, when it stood alone
        body = self.expected[section][name]
        body[key] = [item for item in body[key] if item not in values]

    def set_value(self, section: str, name: str, key: str, value: bool, *, after: str) -> None:
        table = self._table(section, name)
        if key in table:
            table[key] = value  # tomlkit keeps the old item's indent and trailing comment
        else:
            _insert_key(table, key, tomlkit.item(value), after=after, newline=self.newline)
        self.expected[section][name][key] = value

    def commit(self, what: str) -> None:
        """Write the edited document, or refuse (the file untouched) if it is not exactly right."""
        new_text = tomlkit.dumps(self.document)
        try:
            actual = tomllib.loads(new_text)
        except tomllib.TOMLDecodeError:
            actual = None
        if actual != self.expected:
            raise _unusual_layout(self.path)
        try:
            parse_watch_text(new_text, self.path)
        except ConfigError as error:
            already = self._current_error()
            if already is not None:
                raise UsageError(f"{self.path} was not changed: it is invalid already; fix this first:\n"
                                 f"{already}") from None
            key = f"{error.key}: " if error.key else ""
            context = f"\n{error.context}" if error.context else ""
            raise UsageError(f"refused {what}: it would make {self.path.name} invalid: {key}{error.message}"
                             f"{context}\n({self.path} was not changed)") from None
        atomic_write_text(self.path, new_text)

    # -- helpers -----------------------------------------------------------------

    def _table(self, section: str, name: str) -> tomlkit.items.Table | tomlkit.items.InlineTable:
        table = self.document[section][name]
        if not isinstance(table, (tomlkit.items.Table, tomlkit.items.InlineTable)):
            raise _unusual_layout(self.path)
        return table

    def _current_error(self) -> ConfigError | None:
        """The loader's located error for the file as it is now, if it has one."""
        try:
            parse_watch_text(self.text, self.path)
        except ConfigError as error:
            return error
        return None


# --------------------------------------------------------------------------
# tomlkit layout
# --------------------------------------------------------------------------


def _append_item(array: tomlkit.items.Array, value: str, newline: str) -> None:
    """Append VALUE the way the list is laid out: inline in a one-line list, else on a
    line of its own, indented like the last item's line, with a comma if the last item has one.

    The layout is read from the array's own text (tomlkit's public as_string),
    never from its private element groups."""
    text = array.as_string()
    if "\n" not in text:
        array.append(value)
        return
    last = _last_value_line(text)
    if last is None:
        array.add_line(value, indent=newline + _FALLBACK_INDENT, newline=False)
        return
    indent, has_comma = last
    array.add_line(value, indent=newline + indent, newline=False, add_comma=has_comma)


def _last_value_line(array_text: str) -> tuple[str, bool] | None:
    """The indentation of the last line of ARRAY_TEXT that starts with a value, and whether
    the array's last value is followed by a comma; None when no value starts a line."""
    body = array_text.strip()
    if body.startswith("["):
        body = body[1:]
    if body.endswith("]"):
        body = body[:-1]
    indent: str | None = None
    code_seen = ""
    for line in body.split("\n")[1:] if "\n" in body else []:
        code = _strip_comment(line).strip()
        if code:
            indent = line[: len(line) - len(line.lstrip())]
            code_seen = code
    if indent is None:
        return None
    return indent, code_seen.endswith(",")


def _strip_comment(line: str) -> str:
    """LINE without a trailing TOML comment (a '#' outside a string)."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote is None:
            if char == "#":
                return line[:index]
            if char in "\"'":
                quote = char
        elif char == "\\" and quote == '"':
            index += 1
        elif char == quote:
            quote = None
        index += 1
    return line


def _insert_key(table: tomlkit.items.Table | tomlkit.items.InlineTable, key: str, item: Any,
                *, after: str | None, newline: str) -> None:
    """Add KEY right after the key AFTER (indented like it), else at the end of the table.

    tomlkit's public append puts a key after the comments that follow the
    table's last value, which belong to the next section; inserting after a
    named key keeps the new line inside the table's own block. tomlkit has no
    public insert-after, so the new line is written into the trail of AFTER's
    item (the text that follows it up to the next line), which its public
    trivia exposes. An inline table has no comments, and tomlkit writes a dotted
    table's keys together: there the key goes at its end."""
    item = tomlkit.item(item)
    item.trivia.trail = newline
    dotted = isinstance(table, tomlkit.items.Table) and table.is_super_table()
    if after is not None and after in table and isinstance(table, tomlkit.items.Table) and not dotted:
        anchor = table.value.item(after)
        line = tomlkit.dumps({key: item}).rstrip("\r\n")
        trail = anchor.trivia.trail
        if not trail.endswith(("\n", "\r")):
            trail += newline
        anchor.trivia.trail = f"{trail}{anchor.trivia.indent}{line}{newline}"
    else:
        table.append(key, item)


# --------------------------------------------------------------------------
# names and messages
# --------------------------------------------------------------------------


def _resolve(names: Sequence[str], wanted: str, kind: str, path: Path, *, others: Sequence[str]) -> str:
    """The name as written in the file: exact, else the only one equal ignoring case."""
    if wanted in names:
        return wanted
    folded = [name for name in names if name.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    if folded:
        raise UsageError(f"{kind} {wanted!r} is ambiguous in {path}: {_quoted(folded)} differ only in case; "
                         "write the name exactly")
    group = next((name for name in others if name.casefold() == wanted.casefold()), None)
    if group is not None:
        raise UsageError(f"{wanted!r} is a term group, not an entity: edit [group.{group}] in {path} by hand")
    raise UsageError(f"no {kind} {wanted!r} in {path}{_known_hint(names, wanted, kind)}")


def _known_hint(names: Sequence[str], wanted: str, kind: str) -> str:
    plural = "entities" if kind == "entity" else f"{kind}s"
    if not names:
        return f" (it has no {plural})"
    if len(names) <= 12:
        return f" ({plural}: {', '.join(names)})"
    close = difflib.get_close_matches(wanted.casefold(), [name.casefold() for name in names], n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f" ({hint}`monitor {'terms' if kind == 'entity' else 'rules'} list` shows them all)"


def _close_hint(wanted: Sequence[str], present: Sequence[str]) -> str:
    """Aliases written differently: case and the '=' marker matter, so 'china' is not '=China'."""
    by_fold = {alias.casefold().lstrip("="): alias for alias in present}
    close = [by_fold[key] for key in dict.fromkeys(w.casefold().lstrip("=") for w in wanted) if key in by_fold]
    return f" (did you mean {_quoted(close)}? aliases are removed exactly as written)" if close else ""


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(value) for value in values)


def _unusual_layout(path: Path) -> MonitorError:
    return MonitorError(f"could not edit {path} safely (its layout is unusual); "
                        "the file was not changed: please edit it by hand")


# --------------------------------------------------------------------------
# the whole file (the web's editor)
# --------------------------------------------------------------------------


def replace_watch_text(watch_path: Path, new_text: str, *, expected_old: str | None) -> None:
    """Write NEW_TEXT, as a person edited it (comments and all), as watch.toml.

    It must pass the watch loader first (ConfigError with line and column
    otherwise), and the file must still be EXPECTED_OLD (what the person
    started from): an edit made meanwhile by a command or another browser is
    never overwritten silently. The write is atomic, under the folder's lock.
    """
    from monitor.match.watch import parse_watch_text

    parse_watch_text(new_text, watch_path)
    with _folder_lock(watch_path.parent):
        try:
            current = watch_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if expected_old is not None and current.replace("\r\n", "\n") != expected_old.replace("\r\n", "\n"):
            raise UsageError(f"{watch_path} changed since you opened it: reload the page, "
                             "then make your edit again")
        atomic_write_text(watch_path, new_text)
