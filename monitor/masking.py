"""Secrets in URLs, masked for display: the one function every output and message uses.

A URL can carry a secret in three places: its user-info (`user:password@`),
a query parameter whose name says it is one (`?apikey=`, `token`, `key`,
`password`, `secret`, `sig`...), and apprise's parameters that become request
headers (`+Name=`), query parameters (`-name=`) or payload fields (`:name=`) of
a notification, which are routinely tokens. `mask_url` replaces each such
value with `***` and leaves the rest, so the URL still says where it points.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"
_APPRISE_PREFIXES = ("+", "-", ":")  # header, GET parameter, payload field
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "pwd", "pass", "sig",
                 "signature", "auth", "authorization", "credential", "credentials", "session",
                 "sid", "apikey", "jwt", "bearer", "hash", "otp", "code")
_SEPARATOR = re.compile(r"[^a-z0-9]+")
# scheme://user:password@ : the password runs to the last '@' before the path
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#:@]*):[^/?#]*@")


def secret_parameter(name: str) -> bool:
    """Whether a query parameter's name says its value is a secret (or it is an apprise
    header, GET parameter or payload field, which often are)."""
    name = unquote_plus(name).strip()
    if name.startswith(_APPRISE_PREFIXES):
        return True
    words = [word for word in _SEPARATOR.split(name.lower()) if word]
    if not words:
        return False
    joined = "".join(words)
    return (any(word in _SECRET_WORDS for word in words)
            or joined.endswith(("key", "token", "secret", "password", "signature"))
            or joined.startswith(("apikey", "token", "secret", "password", "auth")))


def mask_query(query: str) -> str:
    """QUERY (without '?') with the values of secret parameters replaced by ***."""
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        pairs.append(f"{name}={MASK}" if equals and value and secret_parameter(name) else pair)
    return "&".join(pairs)


def mask_url(url: str) -> str:
    """URL with its password, secret query values and apprise +/-/: parameters masked."""
    return mask_query_values(_USERINFO.sub(rf"\1:{MASK}@", url, count=1))


def mask_query_values(url: str) -> str:
    """URL with secret query values masked and the rest (user-info included) as it is."""
    base, question, rest = url.partition("?")
    if not question:
        return url
    query, hash_mark, fragment = rest.partition("#")
    return f"{base}?{mask_query(query)}{hash_mark}{fragment}"


def mask_text(text: str) -> str:
    """Every http(s) URL inside TEXT (an error message, a log line) masked."""
    return _URL_IN_TEXT.sub(lambda found: mask_url(found.group()), text)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")
