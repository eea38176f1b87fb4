"""Fuzzing text normalisation: any Unicode is cut into words, normalised and matched safely.

Hits must point into the text as the feed gave it, whatever NFKC and
case-folding do to its length, so the strongest property is: an alias put
into random text (between spaces) is found, and its hit slices the original
text to exactly the alias' words.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from monitor.ingest.htmltext import fold_whitespace, html_to_text
from monitor.match import Entity, Matcher, Rule, Watch
from monitor.match.query import parse_query
from monitor.match.text import RU, UK, UK_RU, Analyser, TermError, check_term, language_mode, spans
from monitor.urls import canonical_url

# Every code point Python can hold, lone surrogates included: the parser replaces them in
# feed text, but the matcher also reads text from the command line and must not rely on that.
_tricky = st.sampled_from(["\ud800", "\udfff", "\udc80", "\u0301", "\u0483", "ﬁ", "ß", "İ", "ı", "ǅ", "ς", "\u200b",
                          "\u00ad", "’", "ʼ", "'", "中", "ё", "Ї", "\u3000", "\x85", "*", "=", "-", "_", "¼", "²"])
any_text = st.text(st.characters(exclude_categories=[]) | _tricky, max_size=80)
# Letters from the scripts the watch is written in, with the characters normalisation changes.
_letters = st.sampled_from(
    "abcxyzABCXYZ" "абвгґдеєёжзиіїйклмнопрстуфхцчшщьюяыэъКИЇЁ" "中国外交部" "éüßİıﬁﬀＡＢｃ" "ǅǄΣσς" "0123٣"
)
_alias_word = st.text(_letters, min_size=1, max_size=7)
_joiner = st.sampled_from([" ", " ", "-", "'", "’", " - ", "."])
analyser = Analyser()


def spliced(*pieces: str) -> st.SearchStrategy[str]:
    """Text made of random characters and the given PIECES of syntax."""
    return st.lists(st.characters(codec="utf-8").map(str) | st.sampled_from(pieces), max_size=30).map("".join)


@st.composite
def aliases(draw: st.DrawFn) -> str:
    """A valid alias: words joined by spaces or punctuation, maybe `=` in front, maybe `*` at the end."""
    words = draw(st.lists(_alias_word, min_size=1, max_size=3))
    body = words[0]
    for word in words[1:]:
        body += draw(_joiner) + word
    if draw(st.booleans()) and len(words[-1]) >= 2:
        body += "*"
    alias = ("=" if draw(st.booleans()) else "") + body
    try:
        check_term(alias)
    except TermError:
        return draw(st.nothing())
    return alias


@example(text="ﬁnance Straße İstanbul")
@example(text="e\u0301 \u0301a 中国外交部 Китаєм don’t")
@given(any_text)
def test_words_are_ordered_slices_of_the_original_text(text: str) -> None:
    previous_end = 0
    for start, end, raw in spans(text):
        assert previous_end <= start < end <= len(text)
        assert text[start:end] == raw
        previous_end = end


@example(text="\u1ab0", mode=UK, fold=True)  # found by this test: folding left a mark-only word an empty form
@given(any_text, st.sampled_from([UK, RU, UK_RU]), st.booleans())
def test_every_word_normalises_without_error_and_keys_include_its_form(text: str, mode: str, fold: bool) -> None:
    words = Analyser(fold_diacritics=fold)
    for _, _, raw in spans(text):
        info = words.word(raw, mode)
        assert info.form and info.form in info.keys
        assert all(isinstance(key, str) and key for key in info.keys)


@given(any_text)
def test_a_term_is_valid_or_a_term_error_inside_it(term: str) -> None:
    try:
        check_term(term)
    except TermError as error:
        assert 0 <= error.offset <= len(term), (term, error.offset)
        return
    assert analyser.pattern(term)  # a valid term compiles to at least one word


@example(alias="ﬁx", before="", after="")
@example(alias="=İstanbul", before="", after="")
@example(alias="Σσς", before="x", after="")
@given(aliases(), any_text, any_text)
def test_an_alias_inserted_into_any_text_is_found_where_it_was_put(alias: str, before: str, after: str) -> None:
    body = alias.removeprefix("=")
    text = f"{before} {body} {after}"
    words = spans(body)
    start = len(before) + 1 + words[0][0]
    end = len(before) + 1 + words[-1][1]
    watch = Watch(entities={"e": Entity("e", (alias,))}, rules=(Rule("r", "@e", tree=parse_query("@e")),))
    matches = Matcher.compile(watch).match(title=text)
    assert matches and matches[0].rule == "r", (text, alias)
    assert ("title", start, end) in {(hit.field, hit.start, hit.end) for hit in matches[0].hits}
    pattern, mode = analyser.pattern(alias), language_mode(None, text)
    for hit in matches[0].hits:  # every hit, the inserted one and any chance one, slices to the alias' words
        found = [raw for _, _, raw in spans(text[hit.start:hit.end])]
        assert len(found) == len(pattern)
        assert all(word.matches(analyser.word(raw, mode))
                   for word, raw in zip(pattern, found, strict=True)), (hit, found)


@given(any_text, any_text, any_text, st.sampled_from([None, "uk", "ru", "en", "zh-CN", "xx"]))
def test_matching_any_text_gives_hits_inside_each_field(title: str, summary: str, content: str,
                                                         language: str | None) -> None:
    watch = Watch(
        entities={"china": Entity("china", ("China", "=PRC", "Китай", "中国", "Xi Jinping"), exclude=("fine china",))},
        rules=(Rule("r", "@china OR drone* OR ﬁnance", tree=parse_query("@china OR drone* OR ﬁnance")),),
    )
    fields = {"title": title + " China", "summary": summary, "content": content}
    matches = Matcher.compile(watch).match(**fields, language=language)
    assert [match.rule for match in matches] in ([], ["r"])  # [] when the title ends in "fine"
    assert language_mode(language, *fields.values()) in (UK, RU, UK_RU)
    for hit in matches[0].hits:
        assert 0 <= hit.start < hit.end <= len(fields[hit.field])


@given(any_text, st.booleans())
def test_a_normal_form_normalises_to_itself(text: str, fold: bool) -> None:
    """An alias written in normal form must match the words it is the normal form of."""
    words = Analyser(fold_diacritics=fold)
    for _, _, raw in spans(text):
        form = words.word(raw).form
        assert words.word(form).form == form, (raw, form)


@example(text="a\u200b\u200bb  \n\n c\u00ad")
@given(any_text)
def test_whitespace_folding_is_idempotent(text: str) -> None:
    once = fold_whitespace(text)
    assert fold_whitespace(once) == once
    assert "  " not in once and "\n\n" not in once and once == once.strip()


@given(spliced("<p>", "</p>", "<br/>", "<b>", "&amp;", "&lt;", "<!--", "-->", "<script>", "<", ">", "&#0;",
               "&#xD800;", "\u2028", "\x0c"))
def test_html_to_text_gives_folded_text_for_any_fragment(fragment: str) -> None:
    text = html_to_text(fragment)
    assert fold_whitespace(text) == text


@example(scheme="https://", rest="example.org/a\x85?utm_source=x")  # the stripped query bared a trailing NEL
@example(scheme="http://", rest="0?utm_source=x& &")  # a blank pair kept: "/? " lost its blank the next time
@example(scheme="http://", rest=":80//0")  # no host: urlunsplit made one of the path, the next pass added "/"
@given(st.sampled_from(["http://", "https://", "HTTP://", " https://"]), spliced(
    "u:p@", ":80", ":443", ":99999", "?utm_source=x", "&", "#f", "[::1]", "%41", "/", " ", "\x85", "\t"))
def test_canonical_urls_are_stable(scheme: str, rest: str) -> None:
    """The parser canonicalises every story link it keeps: doing it twice must change nothing."""
    url = scheme + rest
    once = canonical_url(url)
    assert canonical_url(once) == once
