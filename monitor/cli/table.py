"""Tables that fit a terminal's width, measured in the cells the terminal draws.

A terminal draws CJK and other wide characters two cells wide and combining
marks in no cell of their own, so widths here are display widths, not `len`.
When a table is wider than the terminal, the flexible columns (long free text:
titles, URLs, errors) give way first and wrap inside themselves, at spaces
where they can and inside a word only when the word alone is wider than the
column; the short ones (status, counts, times) stay on one line and are cut
with an ellipsis only if the flexible ones cannot make room.

Our own code rather than a table library: it is about a hundred lines, and the one
library we used for it (rich) also made httpx import its command-line module on
every import, a cost every poll paid.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence

GAP = "  "  # between columns
ELLIPSIS = "…"


def char_width(char: str) -> int:
    """Cells CHAR takes on a terminal: 2 for wide and full-width, 0 for combining marks."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def text_width(text: str) -> int:
    return sum(char_width(char) for char in text)


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                flexible: Collection[str]) -> tuple[list[list[str]], list[list[str]]]:
    """The header's and the rows' physical lines, each line one padded string per column."""
    widths = _column_widths(headers, rows, width, flexible)

    def lines_of(row: Sequence[str]) -> list[list[str]]:
        values = [*row, *[""] * (len(headers) - len(row))]
        wrapped = [wrap(value, column_width) if header in flexible else [cut(value, column_width)]
                   for header, value, column_width in zip(headers, values, widths, strict=False)]
        return [[pad(cell[index] if index < len(cell) else "", column_width)
                 for cell, column_width in zip(wrapped, widths, strict=False)]
                for index in range(max(len(cell) for cell in wrapped))]

    return lines_of(headers), [line for row in rows for line in lines_of(row)]


def _column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                   flexible: Collection[str]) -> list[int]:
    """Natural widths, shrunk to fit WIDTH: flexible columns share what the others leave."""
    natural = [max([text_width(header), *(text_width(row[i]) for row in rows if i < len(row))])
               for i, header in enumerate(headers)]
    room = width - len(GAP) * (len(headers) - 1)
    if sum(natural) <= room:
        return natural
    shrinkable = [i for i, header in enumerate(headers) if header in flexible]
    floor = {i: min(natural[i], max(min(text_width(headers[i]), 10), 1)) for i in shrinkable}
    fixed = sum(w for i, w in enumerate(natural) if i not in floor)
    widths = list(natural)
    share = room - fixed
    # Water-filling: a column narrower than its fair share keeps its width, the rest split what is left.
    pending = sorted(shrinkable, key=lambda i: natural[i])
    while pending:
        fair = max(share // len(pending), 0)
        column = pending[0]
        if natural[column] <= fair:
            share -= natural[column]
            pending.pop(0)
            continue
        for i in pending:
            widths[i] = max(fair, floor[i])
        widths[pending[-1]] = max(share - fair * (len(pending) - 1), floor[pending[-1]])
        break
    fixed_columns = [i for i in range(len(headers)) if i not in floor]
    for _ in range(sum(widths) - room):  # still too wide: narrow the widest short column, a cell at a time
        widest = max(fixed_columns, key=lambda i: widths[i], default=None)
        if widest is None or widths[widest] <= 1:
            break
        widths[widest] -= 1
    return widths


def wrap(text: str, width: int) -> list[str]:
    """TEXT in lines of at most WIDTH cells, broken at spaces, inside a word only if it must."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if text_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        while text_width(word) > width:
            head = _prefix(word, width)
            lines.append(head)
            word = word[len(head):]
        line = word
    lines.append(line)
    return lines


def cut(text: str, width: int) -> str:
    """TEXT on one line of at most WIDTH cells, ending in an ellipsis if it was cut."""
    if text_width(text) <= width:
        return text
    if width <= 1:
        return _prefix(text, width)
    return _prefix(text, width - 1) + ELLIPSIS


def pad(text: str, width: int) -> str:
    return text + " " * max(width - text_width(text), 0)


def _prefix(text: str, width: int) -> str:
    """The longest start of TEXT that fits WIDTH cells (at least one character, so wrapping ends)."""
    used = 0
    for index, char in enumerate(text):
        used += char_width(char)
        if used > width:
            return text[:max(index, 1)]
    return text
