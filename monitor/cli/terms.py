"""`monitor terms list|add|remove|exclude` and `monitor rules enable|disable`: everyday
watch.toml edits as one command each, keeping the file's comments and layout.

After a change the running daemon (the one holding the database lock) gets a
SIGHUP so it reloads the watch at once.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from monitor.cli.context import App, tell_daemon
from monitor.cli.output import bold, echo_jsonl, emit
from monitor.cli.rules import rules_group
from monitor.edit.watch import add_aliases, add_exclude, list_terms, remove_aliases, set_rule_enabled

WATCH_FILE = "watch.toml"
_NAME_COLUMN_MIN = len("ENTITY")


def _watch_path(app: App) -> Path:
    """Only the config folder is needed: a broken feeds.toml must not block a watch edit."""
    return app.config_dir / WATCH_FILE


def _reload_daemon(app: App) -> None:
    """Tell the daemon using this database to reload, or say when the change applies."""
    tell_daemon(app)


@click.group("terms")
def terms_group() -> None:
    """List and edit the names (aliases) of the watched entities in watch.toml.

    Edits keep the file's comments and layout, are checked by the same
    validation as `monitor rules check` before anything is written (a change
    that would break the file is refused and the file stays as it was), and
    make a running daemon reload. Entity names ignore case; aliases are
    matched exactly as written ("=China" is not "China").

    \b
    Examples:
      monitor terms list china
      monitor terms add china "Dong Jun" "Дун Цзюнь"
      monitor terms exclude china "China Open"
    """


@terms_group.command("list")
@click.argument("entity", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one entity per line.")
@click.pass_obj
def terms_list(app: App, entity: str | None, as_json: bool) -> None:
    """List the entities with their aliases and exclusions (or only ENTITY).

    \b
    Examples:
      monitor terms list
      monitor terms list China
      monitor terms list --json | jq -r '.aliases[]'
    """
    path = _watch_path(app)
    rows = list_terms(path, entity)
    if as_json:
        echo_jsonl(rows)
    elif rows:
        _echo_terms_table(rows)
    else:
        emit(f"no entities in {path}", err=True)


@terms_group.command("add")
@click.argument("entity")
@click.argument("aliases", metavar="ALIAS...", nargs=-1, required=True)
@click.pass_obj
def terms_add(app: App, entity: str, aliases: tuple[str, ...]) -> None:
    """Add aliases (names in any language) to ENTITY.

    Write each alias in its dictionary form; "=" in front makes upper case
    count, "*" at the end of a word matches any ending (see watch.toml).

    \b
    Examples:
      monitor terms add china "Dong Jun" "Дун Цзюнь"
      monitor terms add russia "Рособоронекспорт" "Rosoboronexport"
      monitor terms add china "=CCP"
    """
    added = add_aliases(_watch_path(app), entity, aliases)
    skipped = [alias for alias in dict.fromkeys(aliases) if alias not in added]
    if skipped:
        emit(f"already aliases of {entity}: {_listed(skipped)}")
    if not added:
        return
    emit(f"added to {entity}: {_listed(added)}")
    _reload_daemon(app)


@terms_group.command("remove")
@click.argument("entity")
@click.argument("aliases", metavar="ALIAS...", nargs=-1, required=True)
@click.pass_obj
def terms_remove(app: App, entity: str, aliases: tuple[str, ...]) -> None:
    """Remove aliases from ENTITY, exactly as written (every occurrence).

    An entity keeps at least one alias. A removed alias's own comment goes
    with it when the alias stood alone on its line.

    \b
    Examples:
      monitor terms remove china Peking
      monitor terms remove china "=Xi" "=Сі" "=Си"
    """
    removed = remove_aliases(_watch_path(app), entity, aliases)
    missing = [alias for alias in dict.fromkeys(aliases) if alias not in removed]
    if missing:
        emit(f"not aliases of {entity}: {_listed(missing)}")
    emit(f"removed from {entity}: {_listed(removed)}")
    _reload_daemon(app)


@terms_group.command("exclude")
@click.argument("entity")
@click.argument("phrase")
@click.pass_obj
def terms_exclude(app: App, entity: str, phrase: str) -> None:
    """Ignore ENTITY's hits inside PHRASE (a false positive such as "fine china").

    Only the hit inside the phrase is dropped; other hits of the entity in the
    same text still count.

    \b
    Examples:
      monitor terms exclude china "China Open"
      monitor terms exclude russia "Russian roulette"
      monitor terms exclude ukraine "Kyiv cake"
    """
    if not add_exclude(_watch_path(app), entity, phrase):
        emit(f"{entity} already excludes {phrase!r}")
        return
    emit(f"{entity}: hits inside {phrase!r} no longer count")
    _reload_daemon(app)


@rules_group.command("enable")
@click.argument("name")
@click.pass_obj
def rules_enable(app: App, name: str) -> None:
    """Switch the rule NAME back on (sets `enabled = true` if it was off).

    \b
    Example:
      monitor rules enable china_drone_export_curbs
    """
    _switch_rule(app, name, True)


@rules_group.command("disable")
@click.argument("name")
@click.pass_obj
def rules_disable(app: App, name: str) -> None:
    """Switch the rule NAME off (adds `enabled = false`, keeping the rule in the file).

    \b
    Examples:
      monitor rules disable china_ukraine_energy
      monitor rules list
    """
    _switch_rule(app, name, False)


def _switch_rule(app: App, name: str, enabled: bool) -> None:
    state = "enabled" if enabled else "disabled"
    if not set_rule_enabled(_watch_path(app), name, enabled):
        emit(f"rule {name} is already {state}")
        return
    emit(f"rule {name} {state}")
    _reload_daemon(app)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------


def _echo_terms_table(rows: Sequence[dict[str, Any]]) -> None:
    """ENTITY and its aliases, wrapped between whole aliases, then an `exclude:` line."""
    name_width = max(_NAME_COLUMN_MIN, *(len(row["entity"]) for row in rows))
    text_width = max(shutil.get_terminal_size((100, 24)).columns - name_width - 2, 30)
    header = f"{'ENTITY'.ljust(name_width)}  ALIASES"
    emit(bold(header))
    for row in rows:
        lines = _wrap(row["aliases"], text_width)
        if row["exclude"]:
            lines += _wrap(row["exclude"], text_width, first="exclude: ")
        for number, line in enumerate(lines):
            emit(f"{(row['entity'] if number == 0 else '').ljust(name_width)}  {line}".rstrip())


def _wrap(items: Sequence[str], width: int, *, first: str = "") -> list[str]:
    """ITEMS joined with ", " in lines of at most WIDTH, never splitting an item."""
    lines: list[str] = []
    line = ""
    for index, item in enumerate(items):
        piece = item + ("," if index < len(items) - 1 else "")
        if line and len(first) + _width(line) + 1 + _width(piece) > width:
            lines.append(line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    lines.append(line)
    return [(first if number == 0 else " " * len(first)) + text for number, text in enumerate(lines)]


def _width(text: str) -> int:
    """Columns TEXT takes on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _listed(values: Sequence[str]) -> str:
    return ", ".join(values)


COMMANDS = [terms_group]
