"""Ukrainian and Russian lemmas from pymorphy3, loaded lazily and cached.

Each analyser costs tens of MB and a noticeable fraction of a second to load,
so it is created only when the first word of its language needs a lemma, and
never for a watch or a text without Cyrillic words. Lemmas are not cached
here: the matcher keeps the one word cache (monitor.match.engine), of whole
analyses, so a word seen before never reaches this module again.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymorphy3 import MorphAnalyzer

LANGUAGES = ("uk", "ru")

_analysers: dict[str, MorphAnalyzer] = {}
_load_seconds: dict[str, float] = {}
_lock = threading.Lock()


def _analyser(lang: str) -> MorphAnalyzer:
    """The analyser for LANG, created on first use (importing pymorphy3 alone costs start-up)."""
    analyser = _analysers.get(lang)
    if analyser is None:
        with _lock:
            analyser = _analysers.get(lang)
            if analyser is None:
                started = time.perf_counter()
                import pymorphy3

                analyser = pymorphy3.MorphAnalyzer(lang=lang)
                _load_seconds[lang] = time.perf_counter() - started
                _analysers[lang] = analyser
    return analyser


def lemmas(word: str, lang: str) -> tuple[str, ...]:
    """Every dictionary form pymorphy3 proposes for WORD (lower case) in LANG.

    All readings are kept, not only the likeliest: an alias must match each
    word form a reader would recognise, and the wrong reading of a real word
    rarely coincides with an alias.
    """
    forms = {parse.normal_form.replace("ё", "е") for parse in _analyser(lang).parse(word)}
    return tuple(sorted(forms))


def loaded() -> dict[str, float]:
    """Languages whose analyser is loaded, with the seconds each took to load."""
    return dict(_load_seconds)
