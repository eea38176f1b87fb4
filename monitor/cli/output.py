"""Everything the CLI prints goes through here: feed text made safe for a terminal,
styles only on a terminal, tables that fit its width.

Feed-derived text can carry terminal controls (ESC, 8-bit CSI and OSC, DEL):
printed raw they clear the screen, rewrite the clipboard or retitle the
window. `emit` shows every C0 control except newline and tab, DEL and every C1
control (U+0080–U+009F) as a visible `\\xNN` escape; table cells escape
newline and tab too. Styles are private-use markers put in by this module and
turned into ANSI codes only after the escaping, and only on a terminal:
feed text can never switch a style on.

Hits are bold yellow on a terminal and `[[like this]]` when piped (a marker
that is no quotation mark, so it never clashes with « » or “ ” in the text).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_IN_CELL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C1_AND_DEL = re.compile(r"[\x7f-\x9f]")

# Style markers: Unicode private-use characters no feed text keeps (they are removed from it).
HIT_OPEN, HIT_CLOSE = "\ue000", "\ue001"
_BOLD, _GREEN, _RED, _END = "\ue002", "\ue003", "\ue004", "\ue005"
_MARKERS = re.compile("[\ue000-\ue005]")
_ANSI = {HIT_OPEN: "\x1b[1;33m", HIT_CLOSE: "\x1b[0m", _BOLD: "\x1b[1m", _GREEN: "\x1b[1;32m",
         _RED: "\x1b[1;31m", _END: "\x1b[0m"}
_PLAIN = {HIT_OPEN: "[[", HIT_CLOSE: "]]"}

# Table columns that give way (wrap inside the column) when a table is wider than the terminal.
FLEXIBLE_COLUMNS = frozenset({"URL", "TITLE", "LAST ERROR", "ERROR", "QUERY", "ALSO REPORTED BY",
                              "NOTE", "TAGS", "DESTINATION", "FEED", "NAME", "RULE"})


def escape_controls(text: str, *, cell: bool = False) -> str:
    """TEXT with terminal controls shown as `\\xNN` (newline and tab kept unless CELL)."""
    pattern = _CONTROLS_IN_CELL if cell else _CONTROLS
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def is_tty(err: bool = False) -> bool:
    return (sys.stderr if err else sys.stdout).isatty()


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def bold(text: str) -> str:
    return f"{_BOLD}{text}{_END}"


def coloured(text: str, colour: str) -> str:
    return f"{_GREEN if colour == 'green' else _RED}{text}{_END}"


def hit(text: str) -> str:
    return f"{HIT_OPEN}{text}{HIT_CLOSE}"


def feed_text(text: Any) -> str:
    """Feed-derived text with any look-alike style marker removed (escaping comes at emit)."""
    return _MARKERS.sub("", "" if text is None else str(text))


def render(text: str, *, err: bool = False) -> str:
    """TEXT escaped, with its style markers as ANSI codes on a terminal, plain otherwise."""
    safe = escape_controls(text)
    styles = _ANSI if is_tty(err) else _PLAIN
    return _MARKERS.sub(lambda m: styles.get(m.group(), ""), safe)


def emit(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print one piece of output; see the module docstring."""
    click.echo(render(text, err=err), err=err, nl=nl, color=is_tty(err))


def echo_jsonl(rows: Iterable[dict[str, Any]]) -> None:
    """JSON Lines; DEL and C1 controls written as \\u escapes too (json escapes C0 itself)."""
    for row in rows:
        line = json.dumps(row, ensure_ascii=False, default=str)
        click.echo(_C1_AND_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", line))


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table: on a terminal fitted to its width (long cells wrap inside their column, see
    cli/table.py); piped, plain columns two spaces apart, stable for scripts."""
    cells = [[escape_controls(feed_text(value), cell=True) for value in row] for row in rows]
    if is_tty():
        from monitor.cli.table import GAP, table_lines  # only a table on a terminal needs it

        head, body = table_lines(headers, cells, terminal_width(), FLEXIBLE_COLUMNS)
        for line in head:
            emit(GAP.join(bold(part) if part.strip() else part for part in line).rstrip())
        for line in body:
            emit(GAP.join(line).rstrip())
        return
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=False)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
