"""The rule query language: lexer, parser and syntax tree.

The grammar (loosest binding first) is documented for users in
docs/watch-language.md; in short:

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= near ("AND"? near)*          adjacent operands are ANDed
    near    := unary (("NEAR/n" | "ONEAR/n") unary)*
    unary   := "NOT" unary | FIELD ":" unary | atom
    atom    := word | "phrase" | @entity | #group | "(" or_expr ")"

Errors carry the character offset of the bad token, so the loader can put a
caret under it in watch.toml.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from monitor.match.text import TermError, check_term

FIELDS = ("title", "summary", "content")
SCOPES: dict[str, frozenset[str]] = {
    "title": frozenset({"title"}),
    "summary": frozenset({"summary"}),
    "content": frozenset({"content"}),
    "text": frozenset(FIELDS),
}
MAX_DISTANCE = 1000
# Trees are walked, compiled and evaluated recursively, one level per operator: a cap on
# the tokens keeps every query far from Python's recursion limit.
MAX_TOKENS = 256
_MAX_DEPTH = 64

_CHUNK = re.compile(r'[^\s()"]+')
_NEAR = re.compile(r"(O?NEAR)(?:(/)(.*))?$")
_FIELD = re.compile(r"([A-Za-z]+):")
_NAME = re.compile(r"[\w-]+")
_REF_KINDS = {"@": "entity", "#": "group"}


class QueryError(ValueError):
    """A query that cannot be parsed; OFFSET is the character where the problem is."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# -- syntax tree -------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or "quoted phrase" written in the query itself."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Ref:
    """@entity or #group."""

    kind: str  # "entity" or "group"
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node
    start: int


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    distance: int  # at most this many words between the two hits
    ordered: bool  # ONEAR: the left hit comes first
    start: int


@dataclass(frozen=True)
class Scope:
    fields: frozenset[str]
    operand: Node
    start: int


Node = Term | Ref | And | Or | Not | Near | Scope


# -- lexer ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # ( ) AND OR NOT NEAR FIELD WORD PHRASE REF
    text: str  # as written, for messages
    start: int
    end: int
    inner: str = ""  # PHRASE: text between the quotes; REF: the name
    ref_kind: str = ""  # REF: "entity" or "group"
    fields: frozenset[str] = frozenset()  # FIELD
    distance: int = 0  # NEAR
    ordered: bool = False  # NEAR: ONEAR


_OPERAND_STARTS = frozenset({"WORD", "PHRASE", "REF", "(", "NOT", "FIELD"})


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        char = query[position]
        if char.isspace():
            position += 1
        elif char in "()":
            tokens.append(_Token(char, char, position, position + 1))
            position += 1
        elif char == '"':
            token = _phrase(query, position)
            tokens.append(token)
            position = token.end
        elif char in _REF_KINDS:
            token = _reference(query, position)
            tokens.append(token)
            position = token.end
        else:
            token = _word_like(query, position)
            tokens.append(token)
            position = token.end
    return tokens


def _phrase(query: str, start: int) -> _Token:
    close = query.find('"', start + 1)
    if close < 0:
        raise QueryError('unterminated quote: this " is never closed', start)
    inner = query[start + 1:close]
    if not inner.strip():
        raise QueryError("empty phrase", start)
    return _Token("PHRASE", query[start:close + 1], start, close + 1, inner=inner)


def _reference(query: str, start: int) -> _Token:
    sigil = query[start]
    kind = _REF_KINDS[sigil]
    name = _NAME.match(query, start + 1)
    if name is None:
        article = "an" if kind == "entity" else "a"
        raise QueryError(f"'{sigil}' must be followed by {article} {kind} name", start)
    end = name.end()
    if end < len(query) and not query[end].isspace() and query[end] not in '()"':
        raise QueryError(f"unexpected {query[end]!r} after {sigil}{name.group()}", end)
    return _Token("REF", query[start:end], start, end, inner=name.group(), ref_kind=kind)


def _word_like(query: str, start: int) -> _Token:
    chunk_match = _CHUNK.match(query, start)
    assert chunk_match is not None  # the caller saw a character that starts a chunk
    chunk = chunk_match.group()
    end = chunk_match.end()
    if chunk in ("AND", "OR", "NOT"):
        return _Token(chunk, chunk, start, end)
    near = _NEAR.match(chunk)
    if near:
        return _near(near, chunk, start, end)
    field = _FIELD.match(chunk)
    if field:
        name = field.group(1).lower()
        if name not in SCOPES:
            raise QueryError(f"unknown field '{field.group(1)}:'{_suggest(name, SCOPES)}"
                             f" (fields: {', '.join(SCOPES)}; quote the text to search for it)", start)
        return _Token("FIELD", field.group(), start, start + field.end(), fields=SCOPES[name])
    return _Token("WORD", chunk, start, end)


def _near(near: re.Match[str], chunk: str, start: int, end: int) -> _Token:
    operator = near.group(1)
    if not near.group(2):
        raise QueryError(f"{operator} needs a distance in words, e.g. {operator}/10", start)
    digits = near.group(3)
    if not digits.isdigit() or not digits.isascii():
        raise QueryError(f"the distance after {operator}/ must be a whole number of words, e.g. {operator}/10",
                         start + len(operator) + 1)
    distance = int(digits)
    if distance > MAX_DISTANCE:
        raise QueryError(f"{operator} distance {distance} is too large (at most {MAX_DISTANCE} words)",
                         start + len(operator) + 1)
    return _Token("NEAR", chunk, start, end, distance=distance, ordered=operator == "ONEAR")


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}:'?)" if close else ""


# -- parser --------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if self.index == MAX_TOKENS:  # checked here, so a more precise error found earlier comes first
            raise QueryError(f"the query is too long: {len(self.tokens)} words and operators, at most {MAX_TOKENS};"
                             " list many words as the terms of a [group.NAME] and write #NAME", token.start)
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("the query is empty", 0)
        node = self.or_expr(None)
        leftover = self.peek()
        if leftover is not None:
            raise QueryError("')' has no matching '('", leftover.start)
        return node

    def expect_operand(self, after: _Token | None) -> None:
        """Explain precisely what is missing when no operand follows AFTER."""
        token = self.peek()
        if token is not None and token.kind in _OPERAND_STARTS:
            return
        if token is None:
            assert after is not None  # parse() rejects an empty query before this
            raise QueryError(f"'{after.text}' needs a term after it", after.start)
        if token.kind == ")":
            if after is not None and after.kind == "(":
                raise QueryError("empty parentheses", after.start)
            if after is None:
                raise QueryError("')' has no matching '('", token.start)
            raise QueryError(f"expected a term after '{after.text}', found ')'", token.start)
        if after is None or after.kind == "(":
            raise QueryError(f"'{token.text}' needs a term before it", token.start)
        raise QueryError(f"expected a term after '{after.text}', found '{token.text}'", token.start)

    def or_expr(self, after: _Token | None) -> Node:
        node = self.and_expr(after)
        while (token := self.peek()) is not None and token.kind == "OR":
            operator = self.take()
            node = Or(node, self.and_expr(operator))
        return node

    def and_expr(self, after: _Token | None) -> Node:
        node = self.near_expr(after)
        while (token := self.peek()) is not None:
            if token.kind == "AND":
                operator = self.take()
                node = And(node, self.near_expr(operator))
            elif token.kind in _OPERAND_STARTS:
                node = And(node, self.near_expr(None))
            else:
                break
        return node

    def near_expr(self, after: _Token | None) -> Node:
        node = self.unary(after)
        while (token := self.peek()) is not None and token.kind == "NEAR":
            operator = self.take()
            right = self.unary(operator)
            for operand in (node, right):
                if isinstance(operand, Not):
                    raise QueryError(f"NOT cannot be an operand of {operator.text}: "
                                     "a missing word has no position", operand.start)
            node = Near(node, right, operator.distance, operator.ordered, operator.start)
        return node

    def unary(self, after: _Token | None) -> Node:
        self.expect_operand(after)
        token = self.take()
        if token.kind == "NOT":
            return Not(self.unary(token), token.start)
        if token.kind == "FIELD":
            return Scope(token.fields, self.unary(token), token.start)
        if token.kind == "(":
            return self.group(token)
        if token.kind == "REF":
            return Ref(token.ref_kind, token.inner, token.start, token.end)
        is_phrase = token.kind == "PHRASE"
        text = token.inner if is_phrase else token.text
        try:
            check_term(text)
        except TermError as error:
            raise QueryError(error.message, token.start + is_phrase + error.offset) from None
        return Term(text, token.start, token.end)

    def group(self, opening: _Token) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise QueryError(f"parentheses nested more than {_MAX_DEPTH} deep", opening.start)
        node = self.or_expr(opening)
        closing = self.peek()
        if closing is None or closing.kind != ")":
            raise QueryError("'(' is never closed", opening.start)
        self.take()
        self.depth -= 1
        return node


def parse_query(query: str) -> Node:
    """Parse QUERY or raise QueryError pointing at the offending character."""
    return _Parser(query).parse()


# -- tree helpers --------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    yield node
    if isinstance(node, (And, Or, Near)):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, (Not, Scope)):
        yield from walk(node.operand)


def true_without_hits(node: Node) -> bool:
    """Whether the query holds for a text in which none of its terms occur.

    Such a query would flag nearly every entry, and the engine only evaluates
    rules one of whose terms occurs, so the loader rejects it.
    """
    if isinstance(node, (Term, Ref, Near)):
        return False
    if isinstance(node, And):
        return true_without_hits(node.left) and true_without_hits(node.right)
    if isinstance(node, Or):
        return true_without_hits(node.left) or true_without_hits(node.right)
    if isinstance(node, Not):
        return not true_without_hits(node.operand)
    return true_without_hits(node.operand)


# -- warnings ------------------------------------------------------------------

_LOWER_OPERATOR = re.compile(r"(?:and|or|not|o?near/\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class QueryWarning:
    """A query that parses but probably does not say what was meant; OFFSET as in QueryError."""

    message: str
    offset: int


def query_warnings(query: str) -> list[QueryWarning]:
    """Operators written in lower or mixed case (`or`, `Not`, `near/5`): the language reads
    them as plain words, so the rule quietly looks for the word "or". Quoted words are
    meant as words and are not reported. An unparsable query has no warnings (its
    error says more)."""
    try:
        tokens = _lex(query)
    except QueryError:
        return []
    warnings = []
    for token in tokens:
        if token.kind == "WORD" and _LOWER_OPERATOR.fullmatch(token.text):
            operator = token.text.upper()
            warnings.append(QueryWarning(
                f"'{token.text}' is read as a word, not the operator {operator}: "
                f"write {operator} for the operator, or quote the word (\"{token.text}\")", token.start))
    return warnings
