"""`monitor alerts add` and `alerts remove`: edit alerts.toml without losing a byte of the user's text.

The same splice as `monitor.configedit` uses for feeds: a new [[destination]]
is rendered by tomlkit and appended after one blank line; a removed one is
cut out with the comment lines directly above it. Everything else stays
byte-identical. The edited text is validated (URLs, secrets, names) and
parsed back and compared with the intended data before the atomic write, so
a refused edit leaves the file untouched. A new alerts.toml starts from the
shipped commented template, private (0600) like every config file.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

import tomlkit
import tomlkit.items

from monitor.alert.destinations import (
    ALERTS_FILE,
    APPRISE_FILES,
    MODES,
    check_clock,
    check_destination_name,
    default_name,
    expand_secrets,
    load_alerts,
    parse_alerts_toml,
    unique_name,
    url_problem,
    validate_alerts_text,
)
from monitor.config import read_config_text
from monitor.durations import format_duration, parse_duration
from monitor.errors import ConfigError, MonitorError, UsageError
from monitor.models import Destination
from monitor.paths import atomic_write_text, default_file_text
from monitor.tomlpos import table_spans

ARRAY = "destination"


def add_destination(config_dir: Path, url: str, *, name: str | None, tags: Sequence[str], mode: str,
                    digest_every: str | None, digest_at: str | None,
                    env: Mapping[str, str]) -> Destination:
    """Append a [[destination]] to alerts.toml (created from the commented template if missing).

    URL is written as given, so a ${NAME} stays a reference; it is expanded
    only to check that apprise can use it.
    """
    _require_folder(config_dir)
    every = _check_options(url, name, tags, mode, digest_every, digest_at)
    current = load_alerts(config_dir, env)
    expanded = _expanded(url, config_dir, env)
    taken = [destination.name for destination in current.destinations]
    if name is None:
        name = unique_name(default_name(expanded), taken)
    elif name.casefold() in {other.casefold() for other in taken}:
        raise UsageError(f"a destination named {name!r} already exists (names are compared ignoring case)")
    path = config_dir / ALERTS_FILE
    text = read_config_text(path)
    if text is None:
        text = default_file_text(ALERTS_FILE)
    _require_destination_tables(text, path)
    table = tomlkit.table()
    table.add("name", name)
    table.add("url", url)
    if tags:
        table.add("tags", list(tags))
    table.add("mode", mode)
    if every is not None:
        table.add("digest_every", every)
    if digest_at is not None:
        table.add("digest_at", digest_at)
    new_text = _append_block(text, _render(table))
    data = parse_alerts_toml(text, path)
    _verify(new_text, path, {**data, ARRAY: [*data.get(ARRAY, []), table.unwrap()]})
    added = validate_alerts_text(new_text, config_dir, env)
    atomic_write_text(path, new_text)
    return next(destination for destination in added.destinations if destination.name == name)


def remove_destination(config_dir: Path, name: str) -> None:
    """Cut the named destination (exact name, else ignoring case) and its own comment out of alerts.toml.

    The rest of the file need not be valid: removing a broken destination is a way to fix it.
    """
    path = config_dir / ALERTS_FILE
    text = read_config_text(path)
    if text is None:
        raise UsageError(f"no destination named {name!r}: {path} does not exist"
                         f"{_apprise_file_hint(config_dir)}")
    data = parse_alerts_toml(text, path)
    _require_destination_tables(text, path)
    entries = data.get(ARRAY, [])
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    index = _find(names, name)
    if index is None:
        raise UsageError(f"no destination named {name!r} in {path}{_known_names(names, name)}"
                         f"{_apprise_file_hint(config_dir)}")
    new_text = _cut_destination(text, index)
    remaining = entries[:index] + entries[index + 1:]
    expected = {key: value for key, value in data.items() if key != ARRAY}
    _verify(new_text, path, {**expected, ARRAY: remaining} if remaining else expected)
    atomic_write_text(path, new_text)


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------


def _require_folder(config_dir: Path) -> None:
    if not config_dir.is_dir():
        raise ConfigError(f"the config folder does not exist; create it with `monitor init {config_dir}`",
                          path=config_dir)


def _check_options(url: str, name: str | None, tags: Sequence[str], mode: str, digest_every: str | None,
                   digest_at: str | None) -> str | None:
    """Command-line values checked up front, so errors name the option; the digest interval as written."""
    if not url.strip():
        raise UsageError("cannot add the destination: the URL is empty")
    problems = [check_destination_name(name) if name is not None else None]
    problems += [f"tag {tag!r} is empty" for tag in tags if not tag.strip()]
    if mode not in MODES:
        problems.append(f"--mode must be immediate or digest, not {mode!r}")
    elif mode == "digest" and (digest_every is None) == (digest_at is None):
        problems.append("--mode digest needs exactly one of --digest-every (such as 6h) "
                        "or --digest-at (HH:MM)")
    elif mode == "immediate" and (digest_every is not None or digest_at is not None):
        problems.append("--digest-every and --digest-at need --mode digest")
    clock_problem = check_clock(digest_at) if digest_at is not None else None
    problems.append(clock_problem and f"invalid --digest-at: {clock_problem}")
    for problem in problems:
        if problem:
            raise UsageError(f"cannot add the destination: {problem}")
    return _every_text(digest_every) if digest_every is not None else None


def _every_text(every: str) -> str:
    try:
        seconds = parse_duration(every)
    except ValueError as error:
        raise UsageError(f"invalid --digest-every: {error}") from None
    if seconds == 0:
        raise UsageError(f"invalid --digest-every {every!r}: it must be longer than 0 seconds")
    return format_duration(seconds)


def _expanded(url: str, config_dir: Path, env: Mapping[str, str]) -> str:
    """URL with its ${NAME} secrets filled in, refused unless apprise can use it."""
    try:
        expanded = expand_secrets(url, config_dir, env)
    except ValueError as problem:
        raise UsageError(f"cannot add the destination: {problem}") from None
    problem = url_problem(expanded)
    if problem:
        raise UsageError(f"cannot add the destination: {problem}")
    return expanded


def _find(names: Sequence[object], wanted: str) -> int | None:
    for index, name in enumerate(names):
        if name == wanted:
            return index
    for index, name in enumerate(names):
        if isinstance(name, str) and name.casefold() == wanted.casefold():
            return index
    return None


def _known_names(names: Sequence[object], wanted: str) -> str:
    """A hint for an unknown name: the destinations there are, or the closest few when there are many."""
    known = [name for name in names if isinstance(name, str)]
    if not known:
        return " (it has no destinations)"
    if len(known) <= 10:
        return f" (destinations: {', '.join(repr(name) for name in known)})"
    close = difflib.get_close_matches(wanted, known, n=3)
    return f" (did you mean {' or '.join(repr(name) for name in close)}?)" if close else ""


def _apprise_file_hint(config_dir: Path) -> str:
    present = [name for name in APPRISE_FILES if (config_dir / name).is_file()]
    return f"; destinations from {present[0]} are removed by editing that file" if present else ""


def _require_destination_tables(text: str, path: Path) -> None:
    """The splice works on [[destination]] tables; an inline array is left to the user."""
    try:
        document = tomlkit.parse(text)
    except Exception as error:  # tomlkit raises its own parse error types, all user-fixable
        raise ConfigError(f"cannot edit the file: {error}", path=path) from None
    entries = document.get(ARRAY)
    if entries is not None and not isinstance(entries, tomlkit.items.AoT):
        found = ("an inline array `destination = [...]`" if isinstance(entries, list)
                 else "a single [destination] table")
        raise UsageError(f"{path} has {found}, not [[destination]] tables: write each destination as a "
                         "[[destination]] table, or edit the file by hand")


def _verify(new_text: str, path: Path, expected: dict[str, Any]) -> None:
    """Refuse to write unless the edited text means exactly the intended data."""
    try:
        actual = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError:
        actual = None
    if actual != expected:
        raise MonitorError(f"could not edit {path} safely (its layout is unusual); "
                           "the file was not changed: please edit it by hand")


# --------------------------------------------------------------------------
# text splicing
# --------------------------------------------------------------------------


def _render(table: tomlkit.items.Table) -> str:
    array = tomlkit.aot()
    array.append(table)
    document = tomlkit.document()
    document.add(ARRAY, array)
    return tomlkit.dumps(document)


def _append_block(text: str, block: str) -> str:
    """TEXT with BLOCK at the end, one blank line between; TEXT itself is kept as is."""
    if not text.strip():
        return block
    separator = "" if text.endswith("\n") else "\n"
    if not (text + separator).endswith("\n\n"):
        separator += "\n"
    return text + separator + block


def _cut_destination(text: str, index: int) -> str:
    """TEXT without the INDEX-th [[destination]] table and the comment lines right above it."""
    spans = table_spans(text)
    own = [span for span in spans if span.path[:2] == (ARRAY, index)]
    before = [span for span in spans if span.header_line < own[0].header_line]
    lines = text.splitlines(keepends=True)
    floor = before[-1].last_line if before else 0  # never climb into the previous table's values
    start = own[0].header_line - 1  # 0-based
    while start > floor and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    end = max(span.last_line for span in own)  # 0-based index of the first line after the table
    while end < len(lines) and not lines[end].strip():
        end += 1
    if end == len(lines):  # the last table: drop the blank lines that separated it instead
        while start > floor and not lines[start - 1].strip():
            start -= 1
    return "".join(lines[:start] + lines[end:])
