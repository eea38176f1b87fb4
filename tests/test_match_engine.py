"""The compiled matcher: operators, word forms, boundaries, excludes, offsets, scores, scope."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.match import Entity, Matcher, Rule, Watch, as_dict, describe, match_entry, parse_watch_text
from monitor.models import Entry, Hit, Match

BASE = """
[entity.china]
aliases = ["China", "Chinese", "Beijing", "=PRC", "Xi Jinping", "Xi", "Китай", "КНР", "Пекін", "Пекин", "中国"]
exclude = ["Chinese New Year", "antique china", "fine china"]

[entity.russia]
aliases = ["Russia", "Moscow", "Росія", "Россия", "Москва"]

[group.drones]
terms = ["drone*", "UAV", "fibre-optic", "battery", "дрон*", "безпілотник", "беспилотник"]
"""


def compile_watch(rules: str, base: str = BASE) -> Matcher:
    return Matcher.compile(parse_watch_text(textwrap.dedent(base) + textwrap.dedent(rules), Path("watch.toml")))


def one_rule(query: str, options: str = "") -> Matcher:
    return compile_watch(f"[rule.r]\nquery = '{query}'\n{options}")


def names(matches: list[Match]) -> list[str]:
    return [match.rule for match in matches]


def matches(matcher: Matcher, title: str, summary: str = "", **context: object) -> bool:
    return bool(matcher.match(title=title, summary=summary, **context))  # type: ignore[arg-type]


# -- operators -------------------------------------------------------------------


def test_and_needs_both_operands() -> None:
    matcher = one_rule("@china AND #drones")
    assert matches(matcher, "Beijing sends drones to Russia")
    assert not matches(matcher, "Beijing hosts trade fair")
    assert not matches(matcher, "Drones hit Kharkiv")


def test_adjacent_operands_are_anded() -> None:
    matcher = one_rule("@china #drones")
    assert matches(matcher, "Beijing sends drones")
    assert not matches(matcher, "Beijing sends envoys")


def test_or_needs_either_operand() -> None:
    matcher = one_rule("@russia OR #drones")
    assert matches(matcher, "Moscow says") and matches(matcher, "Drones hit Kharkiv")
    assert not matches(matcher, "Beijing says")


def test_not_excludes_entries_with_the_term() -> None:
    for query in ("@china NOT #drones", "@china AND NOT #drones"):
        matcher = one_rule(query)
        assert matches(matcher, "Beijing hosts envoy")
        assert not matches(matcher, "Beijing drone exports", summary="")
        assert not matches(matcher, "Beijing hosts envoy", summary="Talks covered drones.")


def test_parentheses_change_grouping() -> None:
    grouped = one_rule("@china AND (sanctions OR #drones)")
    loose = one_rule("@china AND sanctions OR #drones")
    assert not matches(grouped, "Drones hit Kharkiv")
    assert matches(loose, "Drones hit Kharkiv")
    assert matches(grouped, "China faces sanctions") and matches(loose, "China faces sanctions")


def test_phrases_match_their_words_in_order_with_word_forms() -> None:
    matcher = one_rule('"peace plan"')
    assert matches(matcher, "China's peace plan for Ukraine")
    assert matches(matcher, "Two peace plans compared")
    assert not matches(matcher, "A plan for peace")
    assert not matches(matcher, "peace and a plan")
    assert matches(matcher, "Peace-plan talks")  # punctuation between the words does not matter


def test_wildcard_matches_word_starts_only() -> None:
    matcher = one_rule("drone*")
    assert matches(matcher, "Drones and droneports") and matches(matcher, "A drone")
    assert not matches(matcher, "Antidrone systems")


def test_near_counts_words_between_hits_in_either_order() -> None:
    matcher = one_rule("@china NEAR/3 #drones")
    assert matches(matcher, "China one two three drones")
    assert not matches(matcher, "China one two three four drones")
    assert matches(matcher, "Drones one two three Beijing")
    assert matches(matcher, "Chinese drones")


def test_onear_requires_the_left_operand_first() -> None:
    matcher = one_rule("@china ONEAR/3 #drones")
    assert matches(matcher, "China sells drones")
    assert not matches(matcher, "Drones sold by China")


def test_near_does_not_reach_across_fields() -> None:
    matcher = one_rule("@china NEAR/50 #drones")
    assert not matches(matcher, "China speaks", summary="Drones fly.")
    assert matches(matcher, "Title", summary="China speaks. Drones fly.")


def test_near_support_only_counts_the_hits_that_are_near() -> None:
    matcher = one_rule("@china NEAR/1 #drones")
    (match,) = matcher.match(title="Beijing and many other words then Chinese drones")
    assert [hit.term for hit in match.hits] == ["Chinese", "drone*"]


def test_field_scope() -> None:
    title_only = one_rule("title:@china AND #drones")
    assert matches(title_only, "China exports", summary="Drones listed.")
    assert not matches(title_only, "Exports", summary="China drones listed.")
    summary_only = one_rule("summary:(@china NEAR/2 #drones)")
    assert matches(summary_only, "Exports", summary="China drones listed.")
    assert not matches(summary_only, "China drones", summary="Listed.")
    content = one_rule("content:@china")
    assert content.match(title="x", summary="y", content="China")
    any_field = one_rule("text:@china")
    assert matches(any_field, "x", summary="China")


# -- word forms, boundaries, excludes ---------------------------------------------


@pytest.mark.parametrize("title, language", [
    ("Переговори з Китаєм", "uk"), ("Делегація прибула до Китаю", "uk"), ("Зустріч у Пекіні", "uk"),
    ("Переговоры с Китаем", "ru"), ("Делегация прибыла в Китай", "ru"), ("Встреча в Пекине", "ru"),
    ("Поставки з Китаю", None), ("Встреча в Пекине", None),
])
def test_cyrillic_word_forms_match_the_alias(title: str, language: str | None) -> None:
    matcher = one_rule("@china")
    (match,) = matcher.match(title=title, language=language)
    (hit,) = match.hits
    assert title[hit.start:hit.end].startswith(("Кита", "Пекі", "Пеки"))


def test_inflected_group_terms_match_too() -> None:
    matcher = one_rule("@china NEAR/5 #drones")
    assert matches(matcher, "Китай постачає Росії безпілотники", language="uk")
    assert matches(matcher, "Китай поставляет беспилотников", language="ru")


def test_english_possessives_and_plurals() -> None:
    matcher = one_rule("@china AND #drones")
    assert matches(matcher, "China's battery makers")
    assert matches(matcher, "Beijing’s batteries")
    (match,) = matcher.match(title="Xi Jinping's UAVs")
    assert [hit.term for hit in match.hits] == ["Xi Jinping", "UAV"]


def test_whole_words_only() -> None:
    matcher = one_rule("@china")
    assert not matches(matcher, "Shelling in Orlovshchina")
    assert not matches(matcher, "Chinatown festival")
    assert matches(matcher, "Trade with China-based firms")


def test_hyphenated_aliases_match_with_or_without_the_hyphen() -> None:
    matcher = one_rule("#drones")
    for title in ("fibre-optic cable", "fibre optic cable", "fibre–optic cable"):
        assert matches(matcher, title), title
    assert not matches(matcher, "fibreoptic cable")


def test_case_sensitive_alias() -> None:
    matcher = one_rule("@china")
    assert matches(matcher, "PRC envoy")
    assert not matches(matcher, "The prc of things")


def test_exclude_phrases_discard_hits_inside_them() -> None:
    matcher = one_rule("@china")
    assert not matches(matcher, "Chinese New Year parade in Kyiv")
    assert not matches(matcher, "Antique china auction in Lviv")
    assert not matches(matcher, "Served on ﬁne china")  # the exclude phrase is normalised too
    (match,) = matcher.match(title="Chinese New Year greetings from Beijing")
    assert [hit.term for hit in match.hits] == ["Beijing"]


def test_excludes_belong_to_their_entity_only() -> None:
    matcher = one_rule("Chinese")
    assert matches(matcher, "Chinese New Year parade")


def test_han_alias_matches_inside_a_longer_run() -> None:
    matcher = one_rule("@china")
    (match,) = matcher.match(title="中国外交部发言人")
    assert match.hits == (Hit("title", 0, 2, "中国"),)


def test_a_longer_alias_hides_the_shorter_one_inside_it() -> None:
    matcher = one_rule("@china")
    (match,) = matcher.match(title="Xi Jinping meets Xi")
    assert [(hit.start, hit.end, hit.term) for hit in match.hits] == [(0, 10, "Xi Jinping"), (17, 19, "Xi")]


def test_fold_diacritics_option() -> None:
    rules = "[rule.r]\nquery = 'cafe'\n"
    assert not compile_watch(rules).match(title="Café in Lviv")
    folding = compile_watch("[options]\nfold_diacritics = true\n" + rules)
    assert folding.match(title="Café in Lviv")


# -- explanation -------------------------------------------------------------------


def test_hit_offsets_point_into_the_original_field_text() -> None:
    matcher = one_rule("@china AND #drones")
    title = "ﬁrst Ｒｅｐｏｒｔ: Cafe\u0301 talk in Beijing"
    summary = "ｅﬃcient drones, Straße."
    (match,) = matcher.match(title=title, summary=summary)
    texts = {"title": title, "summary": summary}
    assert [(hit.field, texts[hit.field][hit.start:hit.end]) for hit in match.hits] == [
        ("title", "Beijing"), ("summary", "drones")]


def test_hits_are_ordered_title_summary_content_and_name_the_alias_as_written() -> None:
    matcher = one_rule("@china OR #drones")
    (match,) = matcher.match(title="UAV", summary="PRC", content="Chinese drones")
    assert match.hits == (Hit("title", 0, 3, "UAV"), Hit("summary", 0, 3, "PRC"),
                          Hit("content", 0, 7, "Chinese"), Hit("content", 8, 14, "drone*"))


def test_snippet_marks_hits_and_puts_a_title_with_hits_first() -> None:
    matcher = one_rule("@china AND #drones")
    (match,) = matcher.match(title="China and Russia", summary="Talks covered drones and trade.")
    assert match.snippet == "[[China]] and Russia — Talks covered [[drones]] and trade."


def test_snippet_of_a_long_summary_is_a_window_around_the_hits() -> None:
    matcher = one_rule("@china")
    summary = "Lorem ipsum dolor " * 20 + "officials in Beijing said" + " sit amet consectetur" * 20
    (match,) = matcher.match(title="News", summary=summary)
    assert match.snippet.startswith("…") and match.snippet.endswith("…")
    assert "officials in [[Beijing]] said" in match.snippet
    assert len(match.snippet.replace("[[", "").replace("]]", "")) <= 202


def test_snippet_merges_overlapping_hits() -> None:
    matcher = one_rule("@china AND China")
    (match,) = matcher.match(title="China talks")
    assert match.snippet == "[[China]] talks"


# -- scoring -------------------------------------------------------------------------


@pytest.mark.parametrize("title, summary, content, score", [
    ("China", "", "", 3.0),
    ("x", "China", "", 1.5),
    ("x", "", "China", 1.0),
    ("China China", "", "", 4.5),
    ("China China China", "", "", 5.25),
    ("China Beijing", "", "", 6.0),
    ("China", "China", "More on China", 5.5),
    ("x", "China", "China", 1.5),  # content repeating the summary is counted once
])
def test_score_weights_fields_and_damps_repeats(title: str, summary: str, content: str, score: float) -> None:
    (match,) = one_rule("@china").match(title=title, summary=summary, content=content)
    assert match.score == score


def test_min_score_threshold() -> None:
    matcher = one_rule("@china AND #drones", "min_score = 4")
    assert matches(matcher, "China", summary="Drones.")  # 3 + 1.5
    assert not matches(matcher, "News", summary="China drones.")  # 1.5 + 1.5


def test_match_carries_rule_severity_and_tags() -> None:
    matcher = one_rule("@china", 'severity = "critical"\ntags = ["asia", "pr"]')
    (match,) = matcher.match(title="China")
    assert (match.rule, match.severity, match.tags) == ("r", "critical", ("asia", "pr"))


# -- scope, enabled, index -----------------------------------------------------------------


def test_feed_scope() -> None:
    matcher = one_rule("@china", 'feeds = ["scmp"]')
    assert matches(matcher, "China", feed="scmp")
    assert not matches(matcher, "China", feed="kyiv")
    assert not matches(matcher, "China")


def test_feed_tag_scope() -> None:
    matcher = one_rule("@china", 'feed_tags = ["asia"]')
    assert matches(matcher, "China", feed="scmp", feed_tags=("news", "asia"))
    assert not matches(matcher, "China", feed="kyiv", feed_tags=("ukraine",))
    assert not matches(matcher, "China", feed_tags=("asia",))  # no feed: outside any feed scope


def test_language_scope() -> None:
    matcher = one_rule("@china", 'languages = ["uk", "RU"]')
    assert matches(matcher, "Китай", language="uk-UA")
    assert matches(matcher, "Китай", language="ru")
    assert not matches(matcher, "China", language="en")
    assert not matches(matcher, "Китай")


def test_disabled_rules_are_not_compiled() -> None:
    matcher = compile_watch("""
        [rule.on]
        query = '@china'
        [rule.off]
        query = '@china'
        enabled = false
        """)
    assert matcher.rules == ["on"]
    assert names(matcher.match(title="China")) == ["on"]


def test_matches_come_in_watch_order() -> None:
    matcher = compile_watch("""
        [rule.second_defined_first]
        query = '#drones'
        [rule.then]
        query = '@china'
        """)
    assert names(matcher.match(title="China drones")) == ["second_defined_first", "then"]


def test_rules_whose_terms_do_not_occur_are_never_evaluated() -> None:
    rules = "".join(f"[rule.r{i}]\nquery = 'word{i} AND @russia'\n" for i in range(200))
    matcher = compile_watch(rules + "[rule.china]\nquery = '@china'\n")
    assert names(matcher.match(title="China and Russia")) == ["china"]
    # every r* rule mentions Russia, but needs its own word first: only one rule ran
    assert matcher.evaluations == 1
    assert names(matcher.match(title="word7 in Russia")) == ["r7"]
    assert matcher.evaluations == 2


def test_empty_watch_matches_nothing() -> None:
    matcher = Matcher.compile(Watch())
    assert matcher.rules == [] and matcher.match(title="China") == []


def test_match_entry_uses_the_entry_fields() -> None:
    matcher = one_rule("title:@china AND #drones", 'languages = ["uk"]\nfeeds = ["ukrnet"]')
    entry = Entry(feed="ukrnet", guid="1", url=None, title="Китай і Росія", summary="Дрони.", language="uk")
    (match,) = match_entry(matcher, entry, feed_tags=("ua",))
    assert match.hits == (Hit("title", 0, 5, "Китай"), Hit("summary", 0, 5, "дрон*"))


def test_rules_built_in_code_are_parsed_and_checked_at_compile_time() -> None:
    watch = Watch(entities={"c": Entity("c", ("China",))}, rules=(Rule("r", "@c AND drones"),))
    assert names(Matcher.compile(watch).match(title="China drones")) == ["r"]
    for query, message in [("a AND", "rule 'bad': 'AND' needs a term after it"),
                           ("@nobody", "rule 'bad': unknown entity 'nobody'"),
                           ("NOT a", "rule 'bad': the query holds for texts that contain none of its terms")]:
        with pytest.raises(ConfigError) as caught:
            Matcher.compile(Watch(rules=(Rule("bad", query),)))
        assert caught.value.message.startswith(message)


def test_a_double_negation_still_finds_its_rule_through_the_index() -> None:
    matcher = one_rule("NOT (Taiwan OR NOT drones)")
    assert matches(matcher, "Drones over Kyiv")
    assert not matches(matcher, "Taiwan drones")
    assert not matches(matcher, "Kyiv")


FRAGMENTS = ["China", "Ｃｈｉｎａ", "ﬁ", "e\u0301", "Straße", "İstanbul", " ", " ", "-", ", ", "’s", "中国", "外",
             "Китаю", "Пекіні", "drones", "ǅ", "ﬃ", "①"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_every_hit_slice_is_itself_a_whole_hit(pieces: list[str]) -> None:
    """Offsets survive normalisation: the slice a hit names, matched alone, is exactly one hit."""
    matcher = one_rule("@china OR #drones")
    title = "".join(pieces)
    for match in matcher.match(title=title):
        for hit in match.hits:
            piece = title[hit.start:hit.end]
            (alone,) = matcher.match(title=piece)
            assert alone.hits == (Hit("title", 0, len(piece), hit.term),)


def test_matches_as_plain_data_and_as_text() -> None:
    title = "Beijing supplies drones"
    (match,) = compile_watch("[rule.r]\nquery = '@china NEAR/3 #drones'\ntags = ['drones']\n").match(title=title)
    assert as_dict(match) == {
        "rule": "r", "score": 6.0, "severity": "info", "tags": ["drones"],
        "hits": [{"field": "title", "start": 0, "end": 7, "term": "Beijing"},
                 {"field": "title", "start": 17, "end": 23, "term": "drone*"}],
        "snippet": "[[Beijing]] supplies [[drones]]", "hits_omitted": 0,
    }
    assert describe(match, {"title": title}) == (
        "r (info, score 6, tags: drones)\n"
        "  [[Beijing]] supplies [[drones]]\n"
        "  title 0-7 'Beijing' <- Beijing\n"
        "  title 17-23 'drones' <- drone*")
