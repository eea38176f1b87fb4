"""Words, normal forms and offsets: what the matcher compares, and where hits point."""

from __future__ import annotations

import pytest

from monitor.match.text import RU, UK, UK_RU, Analyser, TermError, check_term, english_variants, language_mode, spans


@pytest.fixture(scope="module")
def analyser() -> Analyser:
    return Analyser()


def words(text: str) -> list[str]:
    return [raw for _, _, raw in spans(text)]


def test_spans_point_into_the_original_text_whatever_normalisation_does() -> None:
    text = "ﬁne Ｃｈｉｎａ, Cafe\u0301 and Straße."
    found = spans(text)
    assert [raw for _, _, raw in found] == ["ﬁne", "Ｃｈｉｎａ", "Cafe\u0301", "and", "Straße"]
    for start, end, raw in found:
        assert text[start:end] == raw


def test_hyphens_and_punctuation_split_words_but_apostrophes_do_not() -> None:
    assert words("fibre-optic cable, fibre–optic, U.S.") == ["fibre", "optic", "cable", "fibre", "optic", "U", "S"]
    assert words("Russia’s drones; об’єкт, обʼєкт") == ["Russia’s", "drones", "об’єкт", "обʼєкт"]
    assert words("'quoted' words") == ["quoted", "words"]


def test_each_han_character_is_a_word() -> None:
    assert words("中国外交部 said") == ["中", "国", "外", "交", "部", "said"]


def test_normal_form_folds_case_width_ligatures_and_apostrophes(analyser: Analyser) -> None:
    assert analyser.word("Ｃｈｉｎａ").form == "china"
    assert analyser.word("ﬁne").form == "fine"
    assert analyser.word("Russia’s").form == "russia's"
    assert analyser.word("Cafe\u0301").form == "café"  # NFKC composes the accent


def test_diacritics_folding_is_optional_and_leaves_cyrillic_letters_alone() -> None:
    folding = Analyser(fold_diacritics=True)
    assert folding.word("Café").form == "cafe"
    assert Analyser().word("Café").form == "café"
    assert folding.word("Київ").form == "київ"  # ї is a letter of its own, not an accented і
    assert folding.word("Йорк").form == "йорк"


def test_russian_yo_counts_as_ye(analyser: Analyser) -> None:
    assert analyser.word("Отчёт").form == "отчет"
    assert not analyser.word("отчёт").keys.isdisjoint(analyser.word("отчета").keys)


@pytest.mark.parametrize("word, variant", [
    ("russia's", "russia"), ("drones", "drone"), ("batteries", "battery"), ("movies", "movie"),
    ("taxes", "tax"), ("glasses", "glass"), ("sanctions", "sanction"),
])
def test_english_possessives_and_plurals(word: str, variant: str) -> None:
    assert variant in english_variants(word)


@pytest.mark.parametrize("word", ["news", "bus", "crisis", "glass", "gas", "its", "us", "series"])
def test_words_that_only_look_plural_are_not_stemmed(word: str) -> None:
    assert english_variants(word) == []


@pytest.mark.parametrize("alias, forms", [
    ("Китай", ["Китаю", "Китаєм", "Китаї", "Китая"]),
    ("Пекін", ["Пекіна", "Пекіні"]),
    ("Росія", ["Росії", "Росією"]),
])
def test_ukrainian_word_forms_share_a_key_with_the_dictionary_form(analyser: Analyser, alias: str,
                                                                    forms: list[str]) -> None:
    alias_keys = analyser.word(alias).keys
    for form in forms:
        assert not analyser.word(form, UK).keys.isdisjoint(alias_keys), form


@pytest.mark.parametrize("alias, forms", [
    ("Китай", ["Китаю", "Китаем", "Китае", "Китая"]),
    ("Пекин", ["Пекине", "Пекина"]),
    ("Россия", ["России", "Россией"]),
])
def test_russian_word_forms_share_a_key_with_the_dictionary_form(analyser: Analyser, alias: str,
                                                                  forms: list[str]) -> None:
    alias_keys = analyser.word(alias).keys
    for form in forms:
        assert not analyser.word(form, RU).keys.isdisjoint(alias_keys), form


def test_lemmas_are_tagged_with_their_language(analyser: Analyser) -> None:
    assert "uk:китай" in analyser.word("Китаєм", UK).keys
    assert not any(key.startswith("ru:") for key in analyser.word("Китаєм", UK).keys)
    # the letter є settles the language even when the entry's language is unknown
    assert not any(key.startswith("ru:") for key in analyser.word("Китаєм", UK_RU).keys)
    assert {"uk:китай", "ru:китай"} <= analyser.word("Китаю", UK_RU).keys


def test_words_outside_the_lemma_prefixes_are_not_lemmatised() -> None:
    gated = Analyser(lemma_prefixes=frozenset({"ки"}))
    assert "uk:китай" in gated.word("Китаєм", UK).keys
    assert gated.word("Росією", UK).keys == frozenset({"росією"})


@pytest.mark.parametrize("language, texts, mode", [
    ("uk", ["Китаю"], UK), ("uk-UA", ["Китаю"], UK), ("ru_RU", ["Китаю"], RU),
    (None, ["Китаю і Росії"], UK), (None, ["Китаю и России, объём"], RU),
    (None, ["Китаю"], UK_RU), ("en", ["Китаю"], UK_RU), (None, ["Китаї", "объём"], UK_RU),
])
def test_language_mode_uses_the_declared_language_else_letters(language: str | None, texts: list[str],
                                                               mode: str) -> None:
    assert language_mode(language, *texts) == mode


def test_patterns_from_aliases(analyser: Analyser) -> None:
    xi, jinping = analyser.pattern("Xi Jinping")
    assert xi.prefix is None and "xi" in xi.keys and "jinping" in jinping.keys
    (drone,) = analyser.pattern("drone*")
    assert drone.prefix == "drone" and not drone.keys
    (prc,) = analyser.pattern("=PRC")
    assert prc.upper == (0, 1, 2)
    assert prc.matches(analyser.word("PRC")) and not prc.matches(analyser.word("prc"))
    (china,) = analyser.pattern("=China")
    assert china.matches(analyser.word("CHINA")) and not china.matches(analyser.word("china"))


@pytest.mark.parametrize("term, message, offset", [
    ("dr*one", "'*' is allowed only at the end of a word", 2),
    ("*drone", "'*' is allowed only at the end of a word", 0),
    ("drone**", "'*' is allowed only at the end of a word", 6),
    ("d*", "a wildcard needs at least 2 letters before '*'", 1),
    ("  --  ", "'--' has no letters or digits to match", 2),
    ("=", "'=' has no letters or digits to match", 1),
])
def test_check_term_rejects_terms_that_cannot_match(term: str, message: str, offset: int) -> None:
    with pytest.raises(TermError) as caught:
        check_term(term)
    assert (caught.value.message, caught.value.offset) == (message, offset)


def test_check_term_accepts_phrases_and_wildcards_inside_them() -> None:
    check_term("drone* strike*")
    check_term("=PRC")
    check_term("fibre-optic")
