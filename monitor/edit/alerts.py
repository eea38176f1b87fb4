"""`monitor alerts add` and `alerts remove`: edit alerts.toml without losing a byte of the user's text.

The same splice as `monitor.edit.feeds` uses for feeds: a new [[destination]]
is rendered by tomlkit and appended after one blank line; a removed one is
cut out with the comment lines directly above it. Everything else stays
byte-identical. The edited text is validated (URLs, secrets, names) and
parsed back and compared with the intended data before the atomic write, so
a refused edit leaves the file untouched. A new alerts.toml starts from the
shipped commented template, private (0600) like every config file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import tomlkit

from monitor.alert.apprise_urls import APPRISE_FILES, default_name, unique_name, url_problem
from monitor.alert.destinations import (
    ALERTS_FILE,
    MODES,
    check_clock,
    check_destination_name,
    load_alerts,
    parse_alerts_toml,
    validate_alerts_text,
)
from monitor.alert.secrets import expand_secrets
from monitor.config.load import read_config_text
from monitor.config.paths import atomic_write_text, default_file_text
from monitor.edit.feeds import (
    append_block,
    cut_entry,
    duration_option,
    find_name,
    known_names_hint,
    render_tables,
    require_array_of_tables,
    verify_edit,
)
from monitor.errors import ConfigError, UsageError
from monitor.models import Destination

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
    require_array_of_tables(text, path, ARRAY)
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
    new_text = append_block(text, render_tables(ARRAY, [table]))
    data = parse_alerts_toml(text, path)
    verify_edit(new_text, path, {**data, ARRAY: [*data.get(ARRAY, []), table.unwrap()]})
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
    require_array_of_tables(text, path, ARRAY)
    entries = data.get(ARRAY, [])
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    index = find_name(names, name)
    if index is None:
        hint = known_names_hint(names, name, "destinations")
        raise UsageError(f"no destination named {name!r} in {path}{hint}{_apprise_file_hint(config_dir)}")
    atomic_write_text(path, cut_entry(text, path, data, ARRAY, index))


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
    return duration_option(digest_every, "--digest-every") if digest_every is not None else None


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


def _apprise_file_hint(config_dir: Path) -> str:
    present = [name for name in APPRISE_FILES if (config_dir / name).is_file()]
    return f"; destinations from {present[0]} are removed by editing that file" if present else ""
