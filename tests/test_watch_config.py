"""watch.toml: what loads, and the precise message for each mistake a person can make."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.match import Entity, Group, Matcher, Rule, Watch, load_watch, parse_watch_text

GOOD = """\
# What to watch
[options]
fold_diacritics = false

[entity.china]
description = "China and its leaders"
aliases = ["China", "=PRC", "Китай"]
exclude = ["Chinese New Year"]

[group.drone_parts]
terms = ["drone*", "fibre-optic"]

[rule.china_drones]
description = "Chinese drones"
query = '@china NEAR/15 #drone_parts'
min_score = 4
severity = "warning"
tags = ["drones"]
enabled = true
feeds = ["scmp"]
feed_tags = ["asia"]
languages = ["en", "uk-UA"]

[rule.minimal]
query = "China"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_watch(path)
    assert caught.value.path == path
    return caught.value


def test_a_complete_watch_loads(tmp_path: Path) -> None:
    watch = load_watch(write(tmp_path, GOOD))
    assert watch.entities == {"china": Entity("china", ("China", "=PRC", "Китай"), ("Chinese New Year",),
                                              "China and its leaders", line=5)}
    assert watch.groups == {"drone_parts": Group("drone_parts", ("drone*", "fibre-optic"), line=10)}
    drones, minimal = watch.rules
    assert drones == Rule(name="china_drones", query="@china NEAR/15 #drone_parts", description="Chinese drones",
                          min_score=4.0, severity="warning", tags=("drones",), enabled=True, feeds=("scmp",),
                          feed_tags=("asia",), languages=("en", "uk"), line=15)
    assert drones.tree is not None
    assert minimal == Rule(name="minimal", query="China", line=25)
    assert (minimal.severity, minimal.min_score, minimal.enabled) == ("info", 0.0, True)
    assert watch.path == tmp_path / "watch.toml"


def test_a_missing_file_is_an_empty_watch(tmp_path: Path) -> None:
    watch = load_watch(tmp_path / "absent.toml")
    assert (watch.entities, watch.groups, watch.rules) == ({}, {}, ())
    assert Matcher.compile(watch).rules == []


def test_parse_watch_text_validates_without_a_file(tmp_path: Path) -> None:
    watch = parse_watch_text(GOOD, tmp_path / "not-written.toml")
    assert [rule.name for rule in watch.rules] == ["china_drones", "minimal"]
    with pytest.raises(ConfigError):
        parse_watch_text("[rule.x]\nquery = '@nobody'\n", tmp_path / "not-written.toml")


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "watch.toml").write_bytes(b"[rule.x]\nquery = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_watch(tmp_path / "watch.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_watch(tmp_path)


def test_toml_syntax_errors_give_line_column_and_caret(tmp_path: Path) -> None:
    error = error_for(tmp_path, """\
        [rule.x]
        query = @china
        """)
    assert (error.line, error.column) == (2, 9)
    assert error.message == "invalid TOML: Invalid value"
    assert error.context == "query = @china\n        ^"


def test_toml_errors_reported_at_the_end_of_the_document_name_the_last_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, "[rule.x]\nquery = '@china\n\n")
    assert (error.message, error.line, error.column) == (
        "invalid TOML: Expected \"'\" at the end of the file", 2, None)
    assert error.context == "query = '@china"


# -- queries: line, column and caret under the bad token ------------------------------------


QUERY_HEAD = """\
[entity.china]
aliases = ["China"]
[group.parts]
terms = ["drone*"]

[rule.broken]
"""


@pytest.mark.parametrize("query_line, message, column", [
    ("query = '@china AND (#parts OR drones'", "'(' is never closed", 21),
    ("query = '@china AND #parts)'", "')' has no matching '('", 27),
    ("query = '@china AND'", "'AND' needs a term after it", 17),
    ("query = 'OR @china'", "'OR' needs a term before it", 10),
    ("query = '@china NEAR #parts'", "NEAR needs a distance in words, e.g. NEAR/10", 17),
    ("query = '@china AND \"peace plan'", 'unterminated quote: this " is never closed', 21),
    ("query = '@china AND #prats'", "unknown group #prats (did you mean #parts?)", 21),
    ("query = '@chine NEAR/5 #parts'", "unknown entity @chine (did you mean @china?)", 10),
    ("query = '#parts AND @russia'", "unknown entity @russia", 21),
    ("query =   'NOT @china'", "the query holds for texts that contain none of its terms (only NOT);"
                               " add a term to look for", 12),
    # escapes in a basic string shift the source columns: the caret still lands on the token
    ('query = "\\"peace\\" AND @chine"', "unknown entity @chine (did you mean @china?)", 24),
    ('query = "\\u0041 OR"', "'OR' needs a term after it", 17),
])
def test_query_errors_point_at_the_token(tmp_path: Path, query_line: str, message: str, column: int) -> None:
    error = error_for(tmp_path, QUERY_HEAD + query_line + "\n")
    assert error.message == f"rule 'broken': {message}"
    assert (error.line, error.column, error.key) == (7, column, "rule.broken.query")
    assert error.context == f"{query_line}\n{' ' * (column - 1)}^"
    assert str(error).startswith(f"{tmp_path / 'watch.toml'}:7:{column}: rule.broken.query: rule 'broken': ")


def test_errors_in_a_multi_line_query_point_at_the_right_line(tmp_path: Path) -> None:
    error = error_for(tmp_path, QUERY_HEAD + "query = '''\n@china AND\n  (#parts OR\n  #nope)'''\n")
    assert error.message == "rule 'broken': unknown group #nope"
    assert (error.line, error.column) == (10, 3)
    assert error.context == "  #nope)'''\n  ^"


def test_a_query_in_an_inline_table_is_still_located(tmp_path: Path) -> None:
    error = error_for(tmp_path, "rule.broken = { severity = 'info', query = '@china OR' }\n"
                      + QUERY_HEAD.replace("[rule.broken]\n", ""))
    assert (error.line, error.column) == (1, 52)
    assert error.context is not None and error.context.endswith("\n" + " " * 51 + "^")


# -- aliases and terms ----------------------------------------------------------------------


def test_bad_alias_points_at_its_element(tmp_path: Path) -> None:
    error = error_for(tmp_path, """\
        [entity.china]
        aliases = [
            "China",
            "Bei*jing",
        ]
        """)
    assert error.message == "'*' is allowed only at the end of a word"
    assert (error.line, error.column, error.key) == (4, 9, "entity.china.aliases[1]")
    assert error.context == '    "Bei*jing",\n        ^'


@pytest.mark.parametrize("body, message, key", [
    ('aliases = []', "'aliases' must list at least one word or phrase", "entity.e.aliases"),
    ('description = "x"', "'aliases' is required: a list of words or phrases", "entity.e"),
    ('aliases = "China"', "must be a list of strings, not a string", "entity.e.aliases"),
    ('aliases = ["China", 3]', "must be a string, not an integer", "entity.e.aliases[1]"),
    ('aliases = ["x*"]', "a wildcard needs at least 2 letters before '*'", "entity.e.aliases[0]"),
    ('aliases = ["China"]\nexclude = ["..."]', "'...' has no letters or digits to match", "entity.e.exclude[0]"),
    ('aliases = ["China"]\nalias = ["PRC"]', "unknown key 'alias' (did you mean 'aliases'?)", "entity.e.alias"),
])
def test_entity_mistakes(tmp_path: Path, body: str, message: str, key: str) -> None:
    error = error_for(tmp_path, f"[entity.e]\n{body}\n")
    assert (error.message, error.key) == (message, key)
    assert error.line is not None


def test_duplicate_aliases_are_fine(tmp_path: Path) -> None:
    watch = load_watch(write(tmp_path, '[entity.e]\naliases = ["China", "China"]\n[rule.r]\nquery = "@e"\n'))
    (match,) = Matcher.compile(watch).match(title="China")
    assert match.score == 3.0


# -- rules and the rest -----------------------------------------------------------------------


@pytest.mark.parametrize("body, message, key, line", [
    ('query = "a"\nseverity = "warn"',
     "unknown severity 'warn' (did you mean 'warning'? use one of: info, warning, critical)", "rule.r.severity", 3),
    ('query = "a"\nseverity = "loud"', "unknown severity 'loud' (use one of: info, warning, critical)",
     "rule.r.severity", 3),
    ('querry = "a"', "unknown key 'querry' (did you mean 'query'?)", "rule.r.querry", 2),
    ('description = "a"', "'query' is required", "rule.r", 1),
    ("query = 3", "must be a string, not an integer", "rule.r.query", 2),
    ('query = "a"\nmin_score = "high"', "must be a number, not a string", "rule.r.min_score", 3),
    ('query = "a"\nmin_score = -1', "must not be negative", "rule.r.min_score", 3),
    ('query = "a"\nmin_score = true', "must be a number, not a boolean", "rule.r.min_score", 3),
    ('query = "a"\nenabled = "yes"', "must be true or false, not a string", "rule.r.enabled", 3),
    ('query = "a"\ntags = "x"', "must be a list of strings, not a string", "rule.r.tags", 3),
    ('query = "a"\nfeeds = [1]', "must be a string, not an integer", "rule.r.feeds[0]", 3),
    ('query = "a"\nlanguage = ["uk"]', "unknown key 'language' (did you mean 'languages'?)", "rule.r.language", 3),
    ('query = "a"\ncolour = "red"', "unknown key 'colour' (known keys: query, description, min_score, severity,"
     " tags, enabled, feeds, feed_tags, languages)", "rule.r.colour", 3),
])
def test_rule_mistakes(tmp_path: Path, body: str, message: str, key: str, line: int) -> None:
    error = error_for(tmp_path, f"[rule.r]\n{body}\n")
    assert (error.message, error.key, error.line) == (message, key, line)


def test_value_errors_put_the_caret_under_the_value(tmp_path: Path) -> None:
    error = error_for(tmp_path, '[rule.r]\nquery = "a"\nseverity   =  "warn"\n')
    assert error.column == 15
    assert error.context == 'severity   =  "warn"\n              ^'


@pytest.mark.parametrize("text, message, key", [
    ('[entities.china]\naliases = ["China"]', "unknown key 'entities' (did you mean 'entity'?)", "entities"),
    ('[options]\nfold_diacritic = true', "unknown key 'fold_diacritic' (did you mean 'fold_diacritics'?)",
     "options.fold_diacritic"),
    ('[options]\nfold_diacritics = 1', "must be true or false, not an integer", "options.fold_diacritics"),
    ("entity = 3", "must be a table ([entity.NAME] sections), not an integer", "entity"),
    ("[rule]\nr = 3", "must be a table (a rule), not an integer", "rule.r"),
    ('[rule."china drones"]\nquery = "a"', "the name 'china drones' may only hold letters, digits, '_' and '-'"
     " (queries refer to it by name)", "rule.china drones"),
])
def test_structure_mistakes(tmp_path: Path, text: str, message: str, key: str) -> None:
    error = error_for(tmp_path, text + "\n")
    assert (error.message, error.key) == (message, key)
    assert error.line == 1 or error.line == 2


def test_options_are_carried_to_the_watch(tmp_path: Path) -> None:
    watch = load_watch(write(tmp_path, "[options]\nfold_diacritics = true\n"))
    assert watch == Watch(fold_diacritics=True, path=tmp_path / "watch.toml")


def test_the_documented_example_loads_and_matches(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "watch-language.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    watch = load_watch(write(tmp_path, example))
    assert [rule.name for rule in watch.rules] == ["china_drones"]
    matcher = Matcher.compile(watch)
    assert matcher.match(title="Beijing's drones", summary="Пекін і безпілотники", feed="scmp")
