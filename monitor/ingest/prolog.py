"""Byte-level clean-up of an XML feed before feedparser reads it: the prolog and character references.

Apart from the parsing proper (monitor.ingest.parse) because it is the
security boundary of the XML path: it works on the raw bytes, before any
parser sees them, so that no DOCTYPE internal subset (entity blow-up,
billion laughs, XXE) and no reference to a non-character can reach one.
"""

from __future__ import annotations

import re

from monitor.models import ParseError

_SIGNIFICANT = re.compile(rb"\S")
_MARKUP_START = re.compile(rb"<[!?\w]")  # feedparser's prolog ends at the first <\w too
_NAME = re.compile(rb"\w[\w:.-]*")
_SUBSET_TOKEN = re.compile(rb"""[\]"']|<!--|<\?""")
_DECLARATION_TOKEN = re.compile(rb"""[\[>"']""")
_XML_DECLARATION = re.compile(rb"<\?xml\s")
_UTF16_32 = (  # (leading bytes, codec, BOM to write back); longest patterns first
    (b"\x00\x00\xfe\xff", "utf-32-be", b"\x00\x00\xfe\xff"),
    (b"\xff\xfe\x00\x00", "utf-32-le", b"\xff\xfe\x00\x00"),
    (b"\x00\x00\x00<", "utf-32-be", b""),
    (b"<\x00\x00\x00", "utf-32-le", b""),
    (b"\xfe\xff", "utf-16-be", b"\xfe\xff"),
    (b"\xff\xfe", "utf-16-le", b"\xff\xfe"),
    (b"\x00<", "utf-16-be", b""),
    (b"<\x00", "utf-16-le", b""),
)


def first_significant_byte(body: bytes) -> bytes:
    """First byte after a UTF-8 BOM and whitespace; b'' for an empty body."""
    start = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    match = _SIGNIFICANT.search(body, start)
    return body[match.start():match.start() + 1] if match else b""


def strip_doctype_subsets(body: bytes) -> tuple[bytes, str]:
    """`body` with no entity declarations before its root element, and the root's name.

    Entities can only be declared in a DOCTYPE's internal subset; without
    them neither expat nor feedparser's loose parser can expand a blow-up
    or billion-laughs entity, or an external (XXE) one. feedparser itself
    re-reads `<!ENTITY` declarations anywhere before the first element
    (even in a comment), so everything but the XML declaration and the bare
    DOCTYPE is dropped from the prolog. Works on bytes for every
    ASCII-compatible encoding; UTF-16/32 bodies are transcoded to do the
    same and written back in their own encoding.
    """
    for leading, codec, bom in _UTF16_32:
        if body.startswith(leading):
            text = body[len(bom):].decode(codec, "replace")
            cleaned, root = _clean_prolog(text.encode("utf-8"))
            return bom + cleaned.decode("utf-8").encode(codec), root
    return _clean_prolog(body)


def _clean_prolog(data: bytes) -> tuple[bytes, str]:
    """The ASCII-compatible case of `strip_doctype_subsets`.

    Dropped markup leaves its line breaks behind, so that line numbers in
    parser warnings still point at the served document.
    """
    kept: list[bytes] = []
    position = 0
    while markup := _MARKUP_START.search(data, position):
        start = markup.start()
        kept.append(data[position:start])
        name = _NAME.match(data, start + 1)
        if name:  # the root element: the prolog is over
            kept.append(data[start:])
            return b"".join(kept), name.group(0).decode("ascii", "replace").lower()
        replacement = b""
        if data.startswith(b"<?", start):
            position = _after(data, b"?>", start + 2)
            if _XML_DECLARATION.match(data, start) and b"<" not in data[start + 1:position]:
                replacement = data[start:position]
        elif data.startswith(b"<!--", start):
            position = _after(data, b"-->", start + 4)
        elif data[start:start + 9].upper() == b"<!DOCTYPE":
            position, replacement = _bare_doctype(data, start)
        else:  # <!ENTITY ...> outside a DOCTYPE and the like
            position = _declaration_end(data, start + 2)
        kept.append(replacement)
        kept.append(b"\n" * (data.count(b"\n", start, position) - replacement.count(b"\n")))
    kept.append(data[position:])
    return b"".join(kept), ""


def _after(data: bytes, terminator: bytes, search_from: int) -> int:
    """Position just after the next `terminator`; ParseError if there is none."""
    end = data.find(terminator, search_from)
    if end < 0:
        raise ParseError("not a feed: unterminated markup before the root element")
    return end + len(terminator)


def _bare_doctype(data: bytes, start: int) -> tuple[int, bytes]:
    """End of the DOCTYPE at `start`, and that DOCTYPE without its internal subset.

    A DOCTYPE whose quoted identifiers hide markup is dropped altogether.
    """
    position = start + 9
    while token := _DECLARATION_TOKEN.search(data, position):
        char = token.group(0)
        if char in (b'"', b"'"):
            position = _after(data, char, token.end())
            continue
        head = data[start:token.start()].rstrip()
        doctype = head + b">" if b"<" not in head[1:] else b""
        if char == b">":
            return token.end(), doctype
        return _internal_subset_end(data, token.end()), doctype
    raise ParseError("not a feed: unterminated DOCTYPE")


def _internal_subset_end(data: bytes, position: int) -> int:
    """Position after the `]>` closing an internal subset that starts at `position`."""
    while token := _SUBSET_TOKEN.search(data, position):
        found = token.group(0)
        if found == b"]":
            return _after(data, b">", token.end())
        if found in (b'"', b"'"):
            position = _after(data, found, token.end())
        elif found == b"<!--":
            position = _after(data, b"-->", token.end())
        else:
            position = _after(data, b"?>", token.end())
    raise ParseError("not a feed: unterminated DOCTYPE")


def _declaration_end(data: bytes, position: int) -> int:
    """Position after a `<!...>` declaration whose body starts at `position`."""
    while token := _DECLARATION_TOKEN.search(data, position):
        char = token.group(0)
        if char == b">":
            return token.end()
        position = _after(data, char, token.end()) if char in (b'"', b"'") else token.end()
    raise ParseError("not a feed: unterminated declaration before the root element")


_CHAR_REFERENCE = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def valid_char_references(body: bytes) -> bytes:
    """`body` with references to no character (&#xD800;, &#x110000;) made U+FFFD.

    Malformed feeds go to feedparser's fallback parser, which raises on them
    (chr() of a surrogate cannot be encoded; beyond U+10FFFF, chr() fails),
    losing the whole feed to one bad character. UTF-16/32 bodies are not
    rewritten: there the feed is a ParseError.
    """
    if b"&#" not in body:
        return body

    def replace(reference: re.Match[bytes]) -> bytes:
        digits = (reference.group(1) or reference.group(2)).lstrip(b"0") or b"0"
        code = int(digits, 16 if reference.group(1) else 10) if len(digits) <= 8 else 0x110000
        return b"&#xFFFD;" if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else reference.group(0)
    return _CHAR_REFERENCE.sub(replace, body)
