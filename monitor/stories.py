"""When two entries are one story, and when an entry's content only repeats its summary.

The same story reaches the monitor from several outlets, from a site's
language editions and through tracking links; the outbox sends it once per
destination, digests, reports, `monitor status` and the web's triage list
show it once. All of them must recognise copies the same way, so the key is
defined here, below every stage that needs it (the store included).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from monitor.urls import canonical_url, strip_userinfo

MIN_TITLE_KEY_CHARS = 25  # shorter headlines ("Breaking news") collide by accident

_APOSTROPHES = re.compile("['\u2018\u2019\u02bc\u02b9`\u00b4]")  # inside words: ім'я = ім’я = імʼя
_WORD = re.compile(r"[^\W_]+")
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "in", "net", "org"})  # co.uk, com.ua
_EDITION_SEGMENTS = frozenset({"rus", "ukr", "eng"})  # rbc.ua/rus/... and rbc.ua/ukr/...


def story_keys(url: str | None, title: str, *, min_title_chars: int = MIN_TITLE_KEY_CHARS) -> tuple[str, ...]:
    """Keys under which copies of one story from different outlets or editions collide.

    `url:` the canonical link; `path:` the link without scheme, edition
    subdomain (www., m., ua., ru., en. ...) or leading language path segment
    (/ua/, /rus/ ...), so a site's language editions meet; `title:` the
    headline folded (NFKC, casefold, apostrophes dropped, punctuation and
    spacing collapsed, digits kept), only when long enough not to collide by
    chance (min_title_chars: a digest, a few hours of one rule's stories, takes
    any length). A link to a site's front page says nothing about the story
    and gives no URL keys (some feeds link every entry there).
    """
    keys: list[str] = []
    if url:
        canonical = strip_userinfo(canonical_url(url))
        edition_free = _edition_free(canonical)
        if edition_free is not None:
            keys += [f"url:{canonical}", f"path:{edition_free}"]
    title_key = _title_key(title, min_title_chars)
    if title_key is not None:
        keys.append(f"title:{title_key}")
    return tuple(keys)


def _edition_free(canonical: str) -> str | None:
    """host/path?query with the edition stripped; None for front pages and non-web links."""
    parts = urlsplit(canonical)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and _is_edition_segment(segments[0]):
        segments.pop(0)
    if not segments and not parts.query:
        return None
    host = _registrable(parts.hostname.rstrip("."))
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}/{'/'.join(segments)}{query}"


def _registrable(host: str) -> str:
    """`host` without leading edition labels, never reduced below name.tld or name.co.uk."""
    labels = host.split(".")
    while len(labels) > 2 and _is_edition_label(labels[0]) and labels[1] not in _SECOND_LEVEL:
        labels.pop(0)
    return ".".join(labels)


def _is_edition_label(label: str) -> bool:
    """A host label naming an edition: www, or 1-2 letters such as m, ua, ru, en."""
    return label == "www" or (len(label) <= 2 and label.isascii() and label.isalpha())


def _is_edition_segment(segment: str) -> bool:
    """A leading path segment naming a language edition: two letters (/ua/, /en/) or /rus/, /ukr/, /eng/."""
    segment = segment.lower()
    return segment in _EDITION_SEGMENTS or (len(segment) == 2 and segment.isascii() and segment.isalpha())


def _title_key(title: str, min_chars: int) -> str | None:
    folded = unicodedata.normalize("NFKC", _APOSTROPHES.sub("", title)).casefold()
    key = " ".join(_WORD.findall(folded))
    return key if key and len(key) >= min_chars else None


def repeats_summary(summary: str | None, content: str | None) -> bool:
    """Whether CONTENT only repeats SUMMARY (many feeds send the description again as
    `content:encoded`): such content is kept, matched and shown once, as the summary."""
    return (content or "").strip() == (summary or "").strip()
