"""Words, their normal forms and their offsets in the original text.

Matching compares normalised words, but hits must point into the text as the
feed gave it, so a UI can highlight them. NFKC and case-folding can change a
string's length ("ﬁ" -> "fi", "ß" -> "ss"), so the text is never normalised as
a whole: it is cut into words first, on the original characters, and each
word is normalised on its own. The word keeps its original span.

A word's *keys* are the strings it can match by: its normal form, English
singular/possessive variants, and the Ukrainian/Russian dictionary forms
(lemmas) tagged with their language ("uk:китай"). An alias word matches a
text word when they share a key, so "Китай" finds "Китаєм" through
"uk:китай", and a Russian reading never meets a Ukrainian one by accident.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.languages import language_code
from monitor.match import morph

# Han characters are words on their own: Chinese has no spaces, and an alias
# such as 中国 must be found inside 中国外交部.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
# Combining marks are not \w, but belong to the letter before them (decomposed accents).
_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_WORD_CHAR = rf"(?:[^\W_{_HAN}]|[{_MARKS}])"
_APOSTROPHES = "'\u2019\u02bc\u2018`"
WORDS = re.compile(rf"[{_HAN}]|{_WORD_CHAR}+(?:[{_APOSTROPHES}]{_WORD_CHAR}+)*")
_APOSTROPHE_MAP = str.maketrans({char: "'" for char in _APOSTROPHES})

_CYRILLIC = re.compile("[\u0400-\u04ff]")
_UK_ONLY = re.compile("[іїєґІЇЄҐ]")
_RU_ONLY = re.compile("[ыэъёЫЭЪЁ]")

# Language modes: which analyser reads a Cyrillic word.
UK, RU, UK_RU = "uk", "ru", "uk+ru"
_LANGUAGE_CODES = {"uk": UK, "ua": UK, "ukr": UK, "ru": RU, "rus": RU}

# English words ending in -s that are not plurals of something shorter.
_INVARIANT = frozenset({
    "news", "series", "species", "means", "physics", "politics", "economics",
    "mathematics", "athletics", "chess", "always", "perhaps", "whereas", "lens",
    "tennis", "yes", "thus", "was", "has", "does", "its", "this", "his", "hers",
})


@dataclass(frozen=True, slots=True)
class WordInfo:
    """One word, normalised; shared by every occurrence of the same raw word."""

    form: str  # NFKC, case-folded, apostrophes unified, ё -> е (and accents folded if asked)
    cased: str  # NFKC with apostrophes unified, case kept: for case-sensitive aliases
    keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class WordPattern:
    """One word of an alias or query term."""

    keys: frozenset[str]  # empty for a wildcard
    prefix: str | None  # the part before a trailing "*", normalised
    upper: tuple[int, ...]  # positions that must be upper case (case-sensitive aliases)

    def matches(self, word: WordInfo) -> bool:
        if self.prefix is not None:
            found = word.form.startswith(self.prefix)
        else:
            found = not self.keys.isdisjoint(word.keys)
        if found and self.upper:
            cased = word.cased
            return all(i < len(cased) and cased[i].isupper() for i in self.upper)
        return found


class TermError(ValueError):
    """An alias or query term that cannot match anything; OFFSET is where, in the term."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def language_mode(language: str | None, *texts: str) -> str:
    """Which analyser reads Cyrillic words of an entry: its declared language, else a guess
    from letters only Ukrainian (і ї є ґ) or only Russian (ы э ъ ё) uses, else both."""
    if language and language_code(language) in _LANGUAGE_CODES:
        return _LANGUAGE_CODES[language_code(language)]
    has_uk = any(_UK_ONLY.search(text) for text in texts)
    has_ru = any(_RU_ONLY.search(text) for text in texts)
    if has_uk != has_ru:
        return UK if has_uk else RU
    return UK_RU


def spans(text: str) -> list[tuple[int, int, str]]:
    """The words of TEXT as (start, end, raw word), offsets into TEXT itself."""
    return [(m.start(), m.end(), m.group()) for m in WORDS.finditer(text)]


def english_variants(form: str) -> list[str]:
    """Possessive and singular forms of an English word ("russia's" -> "russia",
    "batteries" -> "battery"). Deliberately shy: a wrong extra key is harmless
    only while it is not a real word."""
    variants: list[str] = []
    if form.endswith("'s"):
        form = form[:-2]
        variants.append(form)
    if len(form) <= 3 or not form.endswith("s") or form in _INVARIANT or form.endswith(("ss", "us", "is")):
        return variants
    variants.append(form[:-1])
    if form.endswith("ies"):
        variants.append(form[:-3] + "y")
    elif form.endswith(("ses", "xes", "zes", "ches", "shes")) and len(form) >= 5:
        variants.append(form[:-2])
    return variants


def fold_accents(form: str) -> str:
    """"café" -> "cafe": drop combining marks (the watch's fold_diacritics option)."""
    decomposed = unicodedata.normalize("NFD", form)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _languages(form: str, mode: str) -> tuple[str, ...]:
    if _UK_ONLY.search(form):
        return (UK,)
    if _RU_ONLY.search(form):
        return (RU,)
    return (UK, RU) if mode == UK_RU else (mode,)


class Analyser:
    """Turns raw words into WordInfo, with a bounded cache (news repeats its words)."""

    CACHE_SIZE = 200_000

    def __init__(self, *, fold_diacritics: bool = False, lemma_prefixes: frozenset[str] | None = None,
                 known: Mapping[str, WordInfo] | None = None) -> None:
        """LEMMA_PREFIXES: if given, only Cyrillic words starting with one of these two-letter
        prefixes are lemmatised (the matcher passes those of its aliases' lemmas). KNOWN:
        analyses of raw words in the default mode from an earlier run (monitor.match.cache)."""
        self.fold_diacritics = fold_diacritics
        self.lemma_prefixes = lemma_prefixes
        self._cache: dict[tuple[str, str], WordInfo] = {
            (raw, UK_RU): info for raw, info in (known or {}).items()}

    def analysed(self) -> dict[str, WordInfo]:
        """The raw words analysed so far in the default mode (what `known` takes back)."""
        return {raw: info for (raw, mode), info in self._cache.items() if mode == UK_RU}

    def word(self, raw: str, mode: str = UK_RU) -> WordInfo:
        key = (raw, mode)
        info = self._cache.get(key)
        if info is None:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            info = self._cache[key] = self.analyse(raw, mode)
        return info

    def analyse(self, raw: str, mode: str = UK_RU) -> WordInfo:
        """`word` without the cache, for a caller that keeps its own (the matcher)."""
        cased = unicodedata.normalize("NFKC", raw).translate(_APOSTROPHE_MAP)
        form = cased.casefold()
        if _CYRILLIC.search(form):
            languages = _languages(form, mode)
            form = form.replace("ё", "е")
            keys = {form}
            if self.lemma_prefixes is None or form[:2] in self.lemma_prefixes:
                for lang in languages:
                    keys.update(f"{lang}:{lemma}" for lemma in morph.lemmas(form, lang))
        else:
            if self.fold_diacritics:
                form = fold_accents(form) or form  # a word of combining marks alone keeps them
            keys = {form}
            if form.isascii():
                keys.update(english_variants(form))
        return WordInfo(form, cased, frozenset(keys))

    def pattern(self, term: str) -> tuple[WordPattern, ...]:
        """Compile an alias or query term (see `check_term` for the syntax)."""
        case_sensitive, body = _split_case_marker(term)
        check_term(term)
        patterns: list[WordPattern] = []
        for _, end, raw in spans(body):
            info = self.word(raw)
            upper = tuple(i for i, char in enumerate(info.cased) if char.isupper()) if case_sensitive else ()
            if body.startswith("*", end):
                patterns.append(WordPattern(frozenset(), info.form, upper))
            else:
                patterns.append(WordPattern(info.keys, None, upper))
        return tuple(patterns)


def _split_case_marker(term: str) -> tuple[bool, str]:
    body = term.strip()
    if body.startswith("="):
        return True, body[1:]
    return False, body


@functools.cache
def _word_char() -> re.Pattern[str]:
    """Compiled when a term has a '*': the Han ranges cost milliseconds at every start."""
    return re.compile(_WORD_CHAR + f"|[{_HAN}]")


def check_term(term: str) -> None:
    """Raise TermError unless TERM is a valid alias or query term: words in order,
    `*` right after a word for a prefix, a leading `=` for "upper-case letters
    must be upper case". Needs no language data, so a config check stays cheap."""
    case_sensitive, body = _split_case_marker(term)
    base = len(term) - len(term.lstrip()) + (1 if case_sensitive else 0)
    words = spans(body)
    if not words:
        raise TermError(f"{term.strip()!r} has no letters or digits to match", base)
    ends = {end for _, end, _ in words}
    for position, char in enumerate(body):
        if char != "*":
            continue
        if position not in ends or _word_char().match(body, position + 1):
            raise TermError("'*' is allowed only at the end of a word", base + position)
        start = next(start for start, end, _ in words if end == position)
        if len(unicodedata.normalize("NFKC", body[start:position])) < 2:
            raise TermError("a wildcard needs at least 2 letters before '*'", base + position)
