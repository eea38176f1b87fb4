"""URL clean-up: one canonical form per story link, URLs safe to log, and default ports.

The same story reached through a newsletter, a social network or the feed
itself differs only in tracking parameters and fragments; dropping those
makes the stored link (and the guid fallback built from it) stable.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote_plus, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
_TRACKING_NAMES = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "twclid", "ttclid",
    "yclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "ref_src", "ref_url",
    "_ga", "_gl", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "mkt_tok",
    "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "rb_clickid", "s_kwcid",
    "xtor", "wt_mc", "wt_zmc",  # AT Internet (French press), Webtrekk (German press)
})
DEFAULT_PORTS = {"http": 80, "https": 443}  # the web schemes, and the port a URL without one uses

# scheme://userinfo@ : the userinfo runs to the last '@' before the path.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def canonical_url(url: str) -> str:
    """`url` without tracking parameters, fragment, default port or case noise.

    Other query parameters keep their order and their exact spelling, so the
    result still points at the same resource. Something that is not a valid
    URL comes back stripped of surrounding whitespace, otherwise untouched.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme in DEFAULT_PORTS and not parts.hostname:  # "http:////x", "http://:80//x": no web URL
        return url
    netloc = _canonical_netloc(parts, scheme, port)
    path = parts.path
    if not path and netloc and scheme in DEFAULT_PORTS:
        path = "/"
    # Dropping the query or fragment can bare whitespace that ended the path: strip it too,
    # so that canonical_url(canonical_url(u)) == canonical_url(u).
    return urlunsplit((scheme, netloc, path, _without_tracking(parts.query), "")).strip()


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@`, for messages and logs."""
    return _USERINFO.sub(r"\1", url, count=1)


def port_or_default(parts: SplitResult) -> int | None:
    """The URL's port, else its scheme's default (80, 443); None for another scheme without one.

    Raises ValueError for a port out of range, as SplitResult.port does.
    """
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())


def _canonical_netloc(parts: SplitResult, scheme: str, port: int | None) -> str:
    """Lowercase host, default port dropped, userinfo kept as given."""
    netloc = parts.netloc
    if not netloc:
        return netloc
    userinfo, at, _ = netloc.rpartition("@")
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{userinfo}{at}{host}"


def _without_tracking(query: str) -> str:
    """The query string minus tracking parameters, in the original order."""
    if not query:
        return query
    kept = [pair for pair in query.split("&") if pair.strip() and not _is_tracking(pair)]
    return "&".join(kept)


def _is_tracking(pair: str) -> bool:
    name = unquote_plus(pair.partition("=")[0]).lower()
    return name in _TRACKING_NAMES or name.startswith(_TRACKING_PREFIXES)
