"""The query language: what each query parses to, and where parse errors point."""

from __future__ import annotations

import pytest

from monitor.match.query import And, Near, Node, Not, Or, QueryError, Ref, Scope, Term, parse_query, true_without_hits


def shape(node: Node) -> str:
    """A compact rendering that shows how the parser grouped the query."""
    if isinstance(node, Term):
        return repr(node.text)
    if isinstance(node, Ref):
        return ("@" if node.kind == "entity" else "#") + node.name
    if isinstance(node, And):
        return f"({shape(node.left)} AND {shape(node.right)})"
    if isinstance(node, Or):
        return f"({shape(node.left)} OR {shape(node.right)})"
    if isinstance(node, Not):
        return f"NOT {shape(node.operand)}"
    if isinstance(node, Near):
        return f"({shape(node.left)} {'ONEAR' if node.ordered else 'NEAR'}/{node.distance} {shape(node.right)})"
    assert isinstance(node, Scope)
    return f"{'|'.join(sorted(node.fields))}:{shape(node.operand)}"


@pytest.mark.parametrize("query, expected", [
    ("a AND b", "('a' AND 'b')"),
    ("a b", "('a' AND 'b')"),
    ("a OR b c", "('a' OR ('b' AND 'c'))"),
    ("a b OR c", "(('a' AND 'b') OR 'c')"),
    ("(a OR b) c", "(('a' OR 'b') AND 'c')"),
    ("a AND NOT b", "('a' AND NOT 'b')"),
    ("a NOT b", "('a' AND NOT 'b')"),
    ("NOT NOT a", "NOT NOT 'a'"),
    ("@china NEAR/15 #drone_parts", "(@china NEAR/15 #drone_parts)"),
    ("a ONEAR/3 b", "('a' ONEAR/3 'b')"),
    ("a NEAR/2 b OR c", "(('a' NEAR/2 'b') OR 'c')"),
    ("a NEAR/2 b c", "(('a' NEAR/2 'b') AND 'c')"),
    ("a NEAR/1 b NEAR/2 c", "(('a' NEAR/1 'b') NEAR/2 'c')"),
    ('"peace plan" OR envoy', "('peace plan' OR 'envoy')"),
    ("title:@china AND drones", "(title:@china AND 'drones')"),
    ("title:(a OR b)", "title:('a' OR 'b')"),
    ("Title:a", "title:'a'"),
    ("text:a", "content|summary|title:'a'"),
    ("summary:content:a", "summary:content:'a'"),
    ("drone* fibre-optic", "('drone*' AND 'fibre-optic')"),
    ("and or not near/5", "((('and' AND 'or') AND 'not') AND 'near/5')"),
    ("NEARBY", "'NEARBY'"),
    ('"NEAR"', "'NEAR'"),
    ("@china-2 #a_b", "(@china-2 AND #a_b)"),
])
def test_queries_parse_with_documented_binding(query: str, expected: str) -> None:
    assert shape(parse_query(query)) == expected


def test_terms_keep_their_position_in_the_query() -> None:
    tree = parse_query('@china NEAR/5 "peace plan"')
    assert isinstance(tree, Near)
    assert (tree.left.start, tree.left.end) == (0, 6)  # type: ignore[union-attr]
    assert (tree.right.start, tree.right.end) == (14, 26)  # type: ignore[union-attr]


@pytest.mark.parametrize("query, message, offset", [
    ("", "the query is empty", 0),
    ("   ", "the query is empty", 0),
    ("(a OR b", "'(' is never closed", 0),
    ("a AND (b OR (c)", "'(' is never closed", 6),
    ("a OR b)", "')' has no matching '('", 6),
    (")", "')' has no matching '('", 0),
    ("()", "empty parentheses", 0),
    ("a AND", "'AND' needs a term after it", 2),
    ("a OR", "'OR' needs a term after it", 2),
    ("NOT", "'NOT' needs a term after it", 0),
    ("AND a", "'AND' needs a term before it", 0),
    ("(OR a)", "'OR' needs a term before it", 1),
    ("a OR OR b", "expected a term after 'OR', found 'OR'", 5),
    ("a AND )", "expected a term after 'AND', found ')'", 6),
    ("a NEAR b", "NEAR needs a distance in words, e.g. NEAR/10", 2),
    ("a ONEAR b", "ONEAR needs a distance in words, e.g. ONEAR/10", 2),
    ("a NEAR/ b", "the distance after NEAR/ must be a whole number of words, e.g. NEAR/10", 7),
    ("a NEAR/x b", "the distance after NEAR/ must be a whole number of words, e.g. NEAR/10", 7),
    ("a NEAR/-1 b", "the distance after NEAR/ must be a whole number of words, e.g. NEAR/10", 7),
    ("a NEAR/5000 b", "NEAR distance 5000 is too large (at most 1000 words)", 7),
    ("a NEAR/5 NOT b", "NOT cannot be an operand of NEAR/5: a missing word has no position", 9),
    ('a "peace plan', 'unterminated quote: this " is never closed', 2),
    ('a ""', "empty phrase", 2),
    ("@ a", "'@' must be followed by an entity name", 0),
    ("a #", "'#' must be followed by a group name", 2),
    ("@china's", "unexpected \"'\" after @china", 6),
    ("tilte:a", "unknown field 'tilte:' (did you mean 'title:'?) (fields: title, summary, content, text;"
                " quote the text to search for it)", 0),
    ("a dr*one", "'*' is allowed only at the end of a word", 4),
    ('"peace pl*n"', "'*' is allowed only at the end of a word", 9),
    ("a x*", "a wildcard needs at least 2 letters before '*'", 3),
    ("a ---", "'---' has no letters or digits to match", 2),
])
def test_parse_errors_point_at_the_bad_token(query: str, message: str, offset: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(QueryError, match="nested more than"):
        parse_query("(" * 500 + "a" + ")" * 500)


@pytest.mark.parametrize("query, holds", [
    ("NOT a", True), ("a OR NOT b", True), ("NOT a AND NOT b", True), ("NOT (a AND b)", True),
    ("a", False), ("a AND NOT b", False), ("NOT NOT a", False), ("title:NOT a", True),
    ("a NEAR/3 b", False),
])
def test_true_without_hits_finds_queries_made_only_of_negations(query: str, holds: bool) -> None:
    assert true_without_hits(parse_query(query)) is holds
