"""Language tags reduced to the primary subtag ('uk-UA' -> 'uk'), the one form stored and compared.

Feeds, the config and the watch rules write language tags every way
(`uk-UA`, `uk_UA`, `UK`); entries are stored and rules scoped by the primary
subtag alone, so both sides must reduce a tag the same way: here, once.
"""

from __future__ import annotations

import re

_SEPARATOR = re.compile(r"[-_]")
_LANGUAGE_SUBTAG = re.compile(r"[A-Za-z]{2,3}")


def language_code(tag: str) -> str:
    """The primary subtag of TAG, lower case, whatever it holds: 'uk-UA' -> 'uk', 'pt_BR' -> 'pt'."""
    return _SEPARATOR.split(tag.strip().lower(), maxsplit=1)[0]


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of TAG, lower case, when it is a language (two or three ASCII letters);
    else None: a feed's `<language>` may hold anything ('english', 'x-klingon', '')."""
    if not tag:
        return None
    subtag = _SEPARATOR.split(tag.strip(), maxsplit=1)[0]
    return subtag.lower() if _LANGUAGE_SUBTAG.fullmatch(subtag) else None
