"""HTML fragments from feeds turned into plain text for matching and display.

A handful of regular expressions plus `html.unescape` instead of an HTML
parser: feed bodies are fragments, we only need readable words, and this runs
on every summary and content of every poll (stdlib `html.parser` is an order
of magnitude slower). Every pattern is written so that hostile input (many
unclosed tags, comments or quotes) stays linear in time.

Entities are decoded exactly once, after the tags are gone: `&lt;p&gt;` in a
feed becomes the literal text `<p>`, never a tag.
"""

from __future__ import annotations

import html
import re

# Elements whose content is never readable text. An unclosed one runs to the
# end of the input, as in a browser, so the search never has to restart.
_INVISIBLE = re.compile(
    r"<(script|style|head|template|noscript)\b[^<>]*>.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# <!DOCTYPE ...>, <?xml ...?> and other declarations or processing instructions.
_DECLARATION = re.compile(r"<[!?][^<>]*>")

_BLOCK_NAMES = (
    "address|article|aside|blockquote|br|caption|dd|div|dl|dt|figcaption|figure|"
    "footer|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|"
    "th|thead|tr|ul"
)
# Tag bodies: quoted attribute values may hold '>', never '<' (keeps it linear).
_TAG_BODY = r"""(?:"[^"<]*"|'[^'<]*'|[^'"<>])*>"""
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_NAMES})(?![\w:-]){_TAG_BODY}", re.IGNORECASE)
_ANY_TAG = re.compile(rf"</?[A-Za-z][\w:.-]*{_TAG_BODY}")

# Each pattern matches only where something must change: most words of a
# text are separated by a single plain space and are left alone.
_RAW_BREAKS = re.compile(r"[^\S ]+")  # in HTML, raw newlines and tabs are spaces
_HORIZONTAL_RUNS = re.compile(r"[^\S\n]{2,}|[^\S\n ]")
_LINE_BREAKS = re.compile(r" ?\n\s*")
# Zero-width characters, the soft hyphen and C0 controls (Python's \s already
# covers the other Unicode spaces and line separators).
_INVISIBLE_CLASS = "[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0e-\x1b]"
_INVISIBLE_CHARS = re.compile(_INVISIBLE_CLASS + "+")
_NEEDS_FOLDING = re.compile(r"[^\S ]|  |" + _INVISIBLE_CLASS)


def html_to_text(html_fragment: str) -> str:
    """Plain text of an HTML fragment: block elements become line breaks.

    Raw newlines in HTML are just spaces; only block elements (<p>, <br>,
    <li>, headings...) produce the line breaks of the result, so words from
    two paragraphs never glue together. Text without tags is only unescaped.
    """
    text = _RAW_BREAKS.sub(" ", html_fragment)
    if "<" in text:
        text = text.replace("<![CDATA[", "").replace("]]>", "")
        text = _COMMENT.sub("", text)
        text = _INVISIBLE.sub("", text)
        text = _DECLARATION.sub("", text)
        text = _BLOCK_TAG.sub("\n", text)
        text = _ANY_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return fold_whitespace(text)


def fold_whitespace(text: str) -> str:
    """Plain text with zero-width characters gone and whitespace folded.

    Runs of spaces become one space; line breaks survive, one per run, with
    no blank lines and no spaces around them.
    """
    if not _NEEDS_FOLDING.search(text):  # the common case: one scan, no copy
        return text.strip()
    text = _INVISIBLE_CHARS.sub("", text)
    text = _HORIZONTAL_RUNS.sub(" ", text)
    if "\n" in text:
        text = _LINE_BREAKS.sub("\n", text)
    return text.strip()
