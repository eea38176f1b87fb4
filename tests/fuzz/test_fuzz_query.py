"""Fuzzing the query language: any query gives a rule or a ConfigError pointing at the spot.

Queries come from a grammar-aware strategy (words in three scripts, refs,
phrases, parentheses, operators, fields, wildcards and junk) and from raw
text. Each is written into watch.toml in one of TOML's four string forms,
sometimes with escapes, so the caret mapping from query offsets to file
columns is fuzzed too. The oracle for "which error" is `parse_query` itself
plus the watch's known names: the loader must agree with it, and its caret
must sit under the character the parser blamed.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.match import Matcher, Watch, parse_watch_text
from monitor.match.query import MAX_DISTANCE, MAX_TOKENS, Node, QueryError, Ref, parse_query, true_without_hits, walk

WATCH_PATH = Path("/config/watch.toml")
ENTITIES = {"china": ["China", "=PRC", "Китай", "中国", "Xi Jinping"], "ru-gov": ["Kremlin", "Кремль"]}
GROUPS = {"drone_parts": ["drone*", "дрон*", "fibre-optic", "battery"], "war": ["war", "війна", "война"]}
HEADER = "# fuzzed watch\n" + "".join(
    [f"[entity.{name}]\naliases = {json.dumps(aliases, ensure_ascii=False)}\n" for name, aliases in ENTITIES.items()]
    + [f"[group.{name}]\nterms = {json.dumps(terms, ensure_ascii=False)}\n" for name, terms in GROUPS.items()])
VOCABULARY = ["China", "drones", "war", "Kremlin", "battery", "fibre", "optic", "Китай", "Китаєм", "дронів",
              "війна", "中国", "外交部", "PRC", "prc", "sanctions", "and", "near", "title"]

# -- the query grammar, loosely -------------------------------------------------

_latin = st.text(st.characters(min_codepoint=ord("A"), max_codepoint=ord("z"), categories=["L"]),
                 min_size=1, max_size=8)
_cyrillic = st.text(st.sampled_from("абвгдеєжзиіїйклмнопрстуфхцчшщьюяёыэъКПРС"), min_size=1, max_size=8)
_cjk = st.text(st.sampled_from("中国外交部无人机俄罗斯乌克兰"), min_size=1, max_size=4)
_word = st.one_of(st.sampled_from(VOCABULARY), _latin, _cyrillic, _cjk)
_known_ref = st.sampled_from([f"@{name}" for name in ENTITIES] + [f"#{name}" for name in GROUPS])
_any_ref = st.builds(lambda sigil, name: sigil + name, st.sampled_from("@#"),
                     st.text(st.sampled_from("abc_-1!ä中."), max_size=6))
_phrase = st.builds(lambda words, quote_end: '"' + " ".join(words) + quote_end,
                    st.lists(_word | st.sampled_from(["AND", "NEAR/3", "*", "=", " "]), max_size=3),
                    st.sampled_from(['"', '"', '"', ""]))
_near = st.builds(lambda op, slash, number: op + slash + number, st.sampled_from(["NEAR", "ONEAR"]),
                  st.sampled_from(["/", "/", "/", "", "//"]),
                  st.one_of(st.integers(0, 20).map(str), st.integers(MAX_DISTANCE - 2, MAX_DISTANCE + 2).map(str),
                            st.sampled_from(["", "x", "-1", "٣", "1.5", "99999999999999999999"])))
_field = st.builds(lambda name, rest: name + rest,
                   st.sampled_from(["title:", "summary:", "content:", "text:", "Title:", "TEXT:", "tilte:",
                                    "foo:", "Re:", "http:"]),
                   st.sampled_from(["", "", "(", "a", "//x"]))
_wildcard = st.builds(lambda word, star: word + star, _word,
                      st.sampled_from(["*", "*", "**", "*a", "*-b"])) | st.sampled_from(["*", "a*", "=*", "ab*c"])
_case = st.builds(lambda word: "=" + word, _word) | st.just("=")
_junk = st.characters(codec="utf-8", exclude_categories=["Cs"]).map(str) | st.sampled_from(
    ["\\", "'", "''", '"""', "'''", "\t", "\u00a0", "\u200b", "\u3000", "ﬁ", "ß", ":", "::", "(:)"])
TOKEN = st.one_of(
    _word, _word, _word, _known_ref, _known_ref, _any_ref, _phrase,
    st.sampled_from(["(", ")", "AND", "OR", "NOT", "and", "Or"]), st.sampled_from(["(", ")", "AND", "OR", "NOT"]),
    _near, _field, _wildcard, _case, _junk,
)
SEPARATOR = st.sampled_from([" ", " ", " ", " ", "", "  ", "\t", "\n", " \n  ", "\u3000"])


@st.composite
def grammar_queries(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(TOKEN, min_size=1, max_size=14))
    text = tokens[0]
    for token in tokens[1:]:
        text += draw(SEPARATOR) + token
    return text


# Entry text: the vocabulary (so rules match) among junk and spaces of every kind.
random_texts = st.lists(st.one_of(_word, _junk, SEPARATOR, st.sampled_from([", ", ". ", "-", "'s"])),
                        max_size=30).map("".join)
raw_queries = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
# Deep trees: nested parentheses, NOT chains and long operator chains around the caps,
# so that parsing, compiling and matching them stays clear of the recursion limit.
deep_queries = st.one_of(
    st.builds(lambda depth, inner: "(" * depth + inner + ")" * depth,
              st.integers(0, 200), st.sampled_from(["war", "@china", "NOT a war", ""])),
    st.builds(lambda count, prefix: prefix * count + "war", st.integers(200, 300), st.sampled_from(["NOT ", "title:"])),
    st.builds(lambda count, operator: operator.join(["war"] * count), st.integers(100, 300),
              st.sampled_from([" ", " OR ", " NEAR/2 ", " AND NOT ", " ONEAR/0 "])),
)

# -- writing a query into watch.toml ------------------------------------------


def _basic_escape(char: str, use_unicode_escape: bool) -> str:
    if char == "\\":
        return "\\\\"
    if char == '"':
        return '\\"'
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if ord(char) < 0x20 or ord(char) == 0x7F or use_unicode_escape:
        return f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}"
    return char


@st.composite
def toml_strings(draw: st.DrawFn, value: str) -> str:
    """VALUE as a TOML string in a form that can hold it: literal, basic (some escapes), multi-line."""
    has_control = any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value)
    forms = ["basic", "basic_escaped"]
    if not has_control and "'" not in value and "\n" not in value:
        forms.append("literal")
    if not has_control and "'''" not in value and not value.endswith("'") and "\r" not in value:
        forms.append("multiline_literal")
    forms.append("multiline_basic")
    form = draw(st.sampled_from(forms))
    if form == "literal":
        return f"'{value}'"
    if form == "multiline_literal":
        return f"'''\n{value}'''"
    escapes = draw(st.lists(st.booleans(), min_size=len(value), max_size=len(value))) \
        if form == "basic_escaped" else [False] * len(value)
    if form == "multiline_basic":
        body = "".join(char if char == "\n" else _basic_escape(char, flag)
                       for char, flag in zip(value, escapes, strict=True))
        return f'"""\n{body}"""'
    return '"' + "".join(_basic_escape(char, flag) for char, flag in zip(value, escapes, strict=False)) + '"'


@st.composite
def rule_tables(draw: st.DrawFn, query_strategy: st.SearchStrategy[str]) -> tuple[str, str]:
    """(query, TOML of the rule 'fuzzed' holding it), the table shaped one of three ways."""
    query = draw(query_strategy)
    literal = draw(toml_strings(query))
    indent = draw(st.sampled_from(["", "  ", "\t"]))
    layout = draw(st.sampled_from(["table", "dotted", "inline"]))
    if layout == "table":
        rule = f"[rule.fuzzed]\n{indent}severity = \"warning\"\n{indent}query = {literal}\n"
    elif layout == "dotted":
        rule = f"[rule]\n{indent}fuzzed.query = {literal}\n"
    else:
        rule = f"[rule]\n{indent}fuzzed = {{ min_score = 0, query = {literal} }}\n"
    if draw(st.booleans()):  # Windows line endings: carets must still land on the right character
        rule = rule.replace("\n", "\r\n")
    return query, rule


# -- the properties ------------------------------------------------------------


def expected_problem(query: str) -> tuple[str, int] | None:
    """What the loader must report for QUERY, by the parser's own verdict: (words, offset), or None."""
    try:
        tree = parse_query(query)
    except QueryError as error:
        return error.message, error.offset
    known = {"entity": ENTITIES, "group": GROUPS}
    for node in walk(tree):
        if isinstance(node, Ref) and node.name not in known[node.kind]:
            return f"unknown {node.kind}", node.start
    if true_without_hits(tree):
        return "holds for texts that contain none of its terms", 0
    return None


def caret_column(context: str) -> int:
    """1-based column of the caret in an error's context (source line, then the caret line)."""
    caret_line = context.split("\n")[-1]
    assert caret_line.endswith("^") and caret_line.count("^") == 1, context
    return len(caret_line)


def check_loads_or_points(query: str, rule: str) -> Watch | None:
    """Load the watch holding QUERY: it must load exactly when the parser accepts the query."""
    text = HEADER + rule
    problem = expected_problem(query)
    lines = text.split("\n")
    try:
        watch = parse_watch_text(text, WATCH_PATH)
    except ConfigError as error:
        assert problem is not None, f"valid query rejected: {error}"
        words, offset = problem
        event("rejected")
        assert words in error.message, (error.message, words)
        assert error.path == WATCH_PATH
        assert error.line is not None and 1 <= error.line <= len(lines), error
        source = lines[error.line - 1].removesuffix("\r")
        assert error.column is not None and 1 <= error.column <= len(source) + 1, error
        assert error.context is not None and error.context.split("\n")[0] == source
        assert caret_column(error.context) == error.column
        blamed = source[error.column - 1] if error.column <= len(source) else "\n"
        if offset < len(query):
            # the blamed character itself, or the backslash that starts its escape
            assert blamed in (query[offset], "\\"), (query, offset, error.line, error.column, blamed)
        else:  # the end of the query: its closing quote
            assert blamed in "'\"", (query, offset, blamed)
        return None
    assert problem is None, f"invalid query accepted: {query!r} ({problem})"
    event("loaded")
    rule = watch.rules[0]
    assert rule.query == query and rule.tree == parse_query(query)
    check_matches_cleanly(watch, SAMPLE_TEXTS)
    return watch


SAMPLE_TEXTS = {
    "title": "China and the PRC: drones, fibre-optic cables and war",
    "summary": "Китай постачає дронів; 中国外交部 says the war must end. Kremlin, Кремль.",
    "content": "prc title near AND battery batteries sanctions війна война Xi Jinping",
}


def check_matches_cleanly(watch: Watch, texts: dict[str, str]) -> None:
    """Compile the rule and match it against TEXTS: never an error, hits inside the fields."""
    matcher = Matcher.compile(watch)
    assert matcher.rules == ["fuzzed"]
    for match in matcher.match(**texts, language=None):
        assert match.rule == "fuzzed" and match.score >= 0
        for hit in match.hits:
            assert 0 <= hit.start < hit.end <= len(texts[hit.field])


@example(query="@china NEAR/5 #drone_parts")
@example(query="title:(China OR \"peace plan\") NOT war")
@example(query="NOT @china")
@example(query='"a\\"b')
@example(query="(" * 70 + "a" + ")" * 70)
@example(query="a NEAR/٣ b")
@example(query="drone** OR x")
# Found by this test: a query of thousands of words or NOTs raised RecursionError (Hypothesis
# raises the recursion limit while it runs a test, hence so many).
@example(query=" OR ".join(f"w{number}" for number in range(10_000)))
@example(query="NOT " * 10_000 + "a")
@given(st.one_of(grammar_queries(), raw_queries, deep_queries))
def test_the_query_parser_gives_a_tree_or_an_error_inside_the_query(query: str) -> None:
    try:
        tree: Node = parse_query(query)
    except QueryError as error:
        assert 0 <= error.offset <= len(query), (query, error.offset)
        assert error.message
        return
    for node in walk(tree):
        if isinstance(node, Ref):
            assert query[node.start:node.end] in (f"@{node.name}", f"#{node.name}")


@given(st.text(max_size=30))
def test_the_query_parser_survives_lone_surrogates(query: str) -> None:
    """Python strings can hold what TOML cannot; the parser must still only raise QueryError."""
    try:
        parse_query(query + "\ud800 a")
    except QueryError as error:
        assert 0 <= error.offset <= len(query) + 3


@example(watch=("\\n", '[rule]\nfuzzed.query = "\\\\n"\n'))
# A CRLF file with a multi-line query: the caret fell back to the opening quotes (found by this test).
@example(watch=("a\n*", "[rule.fuzzed]\r\nquery = '''\r\na\r\n*'''\r\n"))
@example(watch=("=\n=", "[rule.fuzzed]\r\nquery = '''\r\n=\r\n='''\r\n"))  # caret at a CRLF line end
@given(rule_tables(st.one_of(grammar_queries(), raw_queries, deep_queries)))
def test_a_watch_with_any_query_loads_or_puts_a_caret_under_the_blamed_character(watch: tuple[str, str]) -> None:
    check_loads_or_points(*watch)


@given(rule_tables(st.lists(st.one_of(_word, _known_ref, st.sampled_from(["AND", "OR", "NEAR/3", "ONEAR/0"])),
                            min_size=1, max_size=6).map(" ".join)),
       st.fixed_dictionaries({field: random_texts for field in ("title", "summary", "content")}))
def test_valid_queries_compile_and_match_random_text_without_error(watch: tuple[str, str],
                                                                    texts: dict[str, str]) -> None:
    """Mostly valid queries, so that compiling and matching run on many shapes of rule."""
    loaded = check_loads_or_points(*watch)
    if loaded is not None:
        check_matches_cleanly(loaded, texts)


def _with_frames_left(frames: int, run: Callable[[], object]) -> object:
    """RUN called when only FRAMES stack frames are left before the recursion limit."""
    depth = len(inspect.stack(0))
    budget = sys.getrecursionlimit() - depth - frames

    def descend(level: int) -> object:
        return run() if level <= 0 else descend(level - 1)
    return descend(budget)


@pytest.mark.parametrize("query", [
    " ".join(["war"] * MAX_TOKENS),
    "NOT " * (MAX_TOKENS - 2) + "war war",
    " OR ".join(f"w{number}" for number in range(MAX_TOKENS // 2)),
    " NEAR/2 ".join(["war"] * (MAX_TOKENS // 2)),
    "(" * 64 + "war" + ")" * 64,
    "war " + "title:" * (MAX_TOKENS - 2) + "war",
])
def test_the_largest_queries_load_compile_and_match_with_stack_to_spare(query: str) -> None:
    """The token cap keeps every stage well inside the default recursion limit (1000)."""
    def run() -> object:
        watch = parse_watch_text(f"{HEADER}[rule.fuzzed]\nquery = '{query}'\n", WATCH_PATH)
        return Matcher.compile(watch).match(title="war w1 war", summary="war")
    assert [match.rule for match in _with_frames_left(500, run)] in ([], ["fuzzed"])
