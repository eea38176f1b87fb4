"""Line numbers for TOML keys and values.

`tomllib` returns plain dicts with no positions, so an error such as "bad URL
in the third [[feed]]" could not say which line to look at. This module scans
the source once, tolerantly (it never raises, even on broken TOML), and
records where every key, array element and table header sits, resolving
arrays of tables to their index: ("feed", 2, "url") is the url key of the
third [[feed]] table.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

PathKey = tuple["str | int", ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Numbers, booleans, dates and times; a date may be followed by " HH:MM...".
_BARE_VALUE = re.compile(r"[A-Za-z0-9_+\-.:]+(?: [0-9]{2}:[A-Za-z0-9_+\-.:]*)?")
# Runs the scanner may take in one step (a char-by-char loop made the watch's scan a tenth of a re-poll).
_BASIC_RUN = re.compile(r'[^"\\\n]+')
_BLANKS = re.compile(r"[ \t\r\n]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}


@dataclass(frozen=True)
class TableSpan:
    """A [table] or [[array.of.tables]] element: its header line and its last content line."""

    path: PathKey
    header_line: int
    last_line: int  # last line holding one of its keys or values (header_line if empty)


@dataclass
class _Index:
    keys: dict[PathKey, int]
    tables: list[TableSpan]


class _Scanner:
    """A forgiving single pass over TOML source, recording positions as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
        self.keys: dict[PathKey, int] = {}
        self.tables: list[TableSpan] = []
        self.last_index: dict[PathKey, int] = {}  # concrete array-of-tables path -> last index
        self.table: PathKey = ()
        self.table_header = 0
        self.table_last = 0

    # -- positions --------------------------------------------------------

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def record(self, path: PathKey, pos: int) -> None:
        self.keys.setdefault(path, self.line_of(pos))

    # -- whitespace and comments -----------------------------------------

    def skip_inline_space(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def skip_space_and_comments(self) -> None:
        """Skip blanks, newlines and comments (inside arrays and between statements)."""
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t\r\n":
                self.pos = _BLANKS.match(self.text, self.pos).end()
            elif char == "#":
                self.skip_to_line_end()
            else:
                return

    def skip_to_line_end(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    # -- keys ------------------------------------------------------------

    def read_key(self) -> tuple[str, ...] | None:
        """A dotted key such as a."b.c".d; None if there is no key here."""
        parts: list[str] = []
        while True:
            self.skip_inline_space()
            part = self.read_simple_key()
            if part is None:
                return None
            parts.append(part)
            self.skip_inline_space()
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    def read_simple_key(self) -> str | None:
        char = self.peek()
        if char == '"':
            return self.read_basic_string()
        if char == "'":
            return self.read_literal_string()
        match = _BARE_KEY.match(self.text, self.pos)
        if not match:
            return None
        self.pos = match.end()
        return match.group()

    # -- strings ----------------------------------------------------------

    def read_basic_string(self) -> str:
        """A one-line "..." string (escapes decoded); stops at the line end if unclosed."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.peek()
            if char == '"':
                self.pos += 1
                break
            if char == "\n":
                break
            if char == "\\":
                out.append(self.read_escape())
                continue
            run = _BASIC_RUN.match(self.text, self.pos)
            out.append(run.group())
            self.pos = run.end()
        return "".join(out)

    def read_escape(self) -> str:
        code = self.peek(1)
        if code in ("u", "U"):
            width = 4 if code == "u" else 8
            digits = self.text[self.pos + 2:self.pos + 2 + width]
            self.pos += 2 + width
            try:
                return chr(int(digits, 16))
            except ValueError:
                return ""
        self.pos += 2
        return _ESCAPES.get(code, code)

    def read_literal_string(self) -> str:
        start = self.pos + 1
        end = start
        while end < len(self.text) and self.text[end] not in "'\n":
            end += 1
        self.pos = end + 1 if end < len(self.text) and self.text[end] == "'" else end
        return self.text[start:end]

    def skip_multiline_string(self, quote: str) -> None:
        """Skip a triple-quoted string; up to two extra quotes before the end belong to it."""
        self.pos += 3
        closing = quote * 3
        while self.pos < len(self.text):
            if quote == '"' and self.peek() == "\\":
                self.pos += 2
                continue
            if self.text.startswith(closing, self.pos):
                self.pos += 3
                extra = 0
                while extra < 2 and self.peek() == quote:
                    self.pos += 1
                    extra += 1
                return
            self.pos += 1

    # -- values -----------------------------------------------------------

    def skip_value(self, path: PathKey) -> None:
        """Skip one value, recording positions of array elements and inline-table keys."""
        char = self.peek()
        if self.text.startswith('"""', self.pos) or self.text.startswith("'''", self.pos):
            self.skip_multiline_string(char)
        elif char == '"':
            self.read_basic_string()
        elif char == "'":
            self.read_literal_string()
        elif char == "[":
            self.skip_array(path)
        elif char == "{":
            self.skip_inline_table(path)
        else:
            match = _BARE_VALUE.match(self.text, self.pos)
            if match:
                self.pos = match.end()
            else:
                self.skip_to_line_end()
        self.table_last = max(self.table_last, self.line_of(max(self.pos - 1, 0)))

    def skip_array(self, path: PathKey) -> None:
        self.pos += 1
        index = 0
        while self.pos < len(self.text):
            self.skip_space_and_comments()
            char = self.peek()
            if char == "]":
                self.pos += 1
                return
            if char == ",":
                self.pos += 1
                continue
            if char == "" or char == "=":
                return
            before = self.pos
            self.record(path + (index,), self.pos)
            self.skip_value(path + (index,))
            index += 1
            if self.pos == before:
                self.pos += 1

    def skip_inline_table(self, path: PathKey) -> None:
        self.pos += 1
        while self.pos < len(self.text):
            self.skip_space_and_comments()
            char = self.peek()
            if char == "}":
                self.pos += 1
                return
            if char == ",":
                self.pos += 1
                continue
            if not self.read_key_value(path):
                self.skip_to_line_end()
                return

    def read_key_value(self, table: PathKey) -> bool:
        """Read `key = value` inside TABLE, recording the key and its dotted prefixes."""
        start = self.pos
        key = self.read_key()
        if key is None:
            return False
        self.skip_inline_space()
        if self.peek() != "=":
            return False
        self.pos += 1
        self.skip_inline_space()
        for length in range(1, len(key) + 1):
            self.record(table + key[:length], start)
        self.table_last = max(self.table_last, self.line_of(start))
        self.skip_value(table + key)
        return True

    # -- tables ------------------------------------------------------------

    def concrete(self, names: tuple[str, ...]) -> PathKey:
        """Resolve a header path, stepping into the last element of each array of tables."""
        path: PathKey = ()
        for name in names:
            path += (name,)
            if path in self.last_index:
                path += (self.last_index[path],)
        return path

    def close_table(self) -> None:
        if self.table_header:
            self.tables.append(TableSpan(self.table, self.table_header, self.table_last))

    def read_header(self) -> None:
        start = self.pos
        is_array = self.text.startswith("[[", self.pos)
        self.pos += 2 if is_array else 1
        names = self.read_key()
        if names is None:
            self.skip_to_line_end()
            return
        self.close_table()
        if is_array:
            array = self.concrete(names[:-1]) + (names[-1],)
            index = self.last_index.get(array, -1) + 1
            self.last_index[array] = index
            path = array + (index,)
        else:
            path = self.concrete(names)
        for length in range(1, len(path) + 1):
            self.record(path[:length], start)
        self.table = path
        self.table_header = self.table_last = self.line_of(start)
        self.skip_to_line_end()

    def scan(self) -> _Index:
        while True:
            self.skip_space_and_comments()
            if self.pos >= len(self.text):
                break
            if self.peek() == "[":
                self.read_header()
                continue
            before = self.pos
            if not self.read_key_value(self.table):
                self.pos = before
            self.skip_to_line_end()
        self.close_table()
        return _Index(self.keys, self.tables)


@functools.lru_cache(maxsize=16)
def _index(text: str) -> _Index:
    return _Scanner(text).scan()


def key_line(text: str, path: Sequence[str | int]) -> int | None:
    """1-based line of the key (or table header, or array element) at PATH, or None."""
    return _index(text).keys.get(tuple(path))


def table_spans(text: str) -> list[TableSpan]:
    """Every table and array-of-tables element in source order, with its line range."""
    return list(_index(text).tables)


def value_column(text: str, line: int) -> int | None:
    """1-based column where the value of the `key = value` on LINE starts, for carets."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    scanner = _Scanner(lines[line - 1])
    scanner.skip_inline_space()
    if scanner.read_key() is None:
        return None
    scanner.skip_inline_space()
    if scanner.peek() != "=":
        return None
    scanner.pos += 1
    scanner.skip_inline_space()
    return scanner.pos + 1 if scanner.pos < len(scanner.text) else None
