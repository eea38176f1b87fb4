"""Where a request may go: credentials stay with their origin, redirects stay out of private networks.

Two rules that make a hostile redirect harmless:

* Credentials (`user:password@` and a feed's `headers`) belong to the origin
  (scheme, host, port) of the URL the user configured, not to wherever the
  feed has since moved. They are sent there, or to the same host upgraded
  from http to https on the default ports, and nowhere else: never to another
  host, never over http after an https origin.
* A redirect into loopback, private, link-local or other special-purpose
  addresses (169.254.169.254, 10.0.0.5, [::1], localhost) is refused, unless
  the configured URL is itself in such a range: a user's own intranet feed
  keeps working, a public feed cannot reach the metadata service or the
  daemon's own metrics. Host names are resolved to check them where
  resolution works (with a proxy and no local DNS, only literal addresses
  and `localhost` are caught).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from monitor.masking import mask_url
from monitor.urls import port_or_default

RESOLVE_TIMEOUT = 5.0  # seconds for the lookup of one redirect target


def origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with the default port filled in; None for an unparsable URL."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), port_or_default(parts)
    except ValueError:
        return None


def credentials_allowed(configured: str, target: str) -> bool:
    """Whether a request to TARGET may carry the credentials of the feed configured at CONFIGURED."""
    home, there = origin(configured), origin(target)
    if home is None or there is None:
        return False
    if home == there:
        return True
    return (home[0] == "http" and there[0] == "https" and home[1] == there[1]
            and home[2] == 80 and there[2] == 443)


def special_address(address: str) -> bool:
    """Loopback, private, link-local, unspecified, reserved or multicast (not the public internet)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified
            or ip.is_reserved or ip.is_multicast or not ip.is_global)


def _literal_or_local_name(host: str) -> bool | None:
    """True/False when the host alone says it; None when only a lookup can tell."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return special_address(host)


async def in_private_network(url: str) -> bool:
    """Whether URL's host is, or resolves to, a loopback/private/link-local address."""
    parts = origin(url)
    if parts is None or not parts[1]:
        return False
    known = _literal_or_local_name(parts[1])
    if known is not None:
        return known
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(parts[1], parts[2],
                                                                 type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return False  # cannot resolve here (a proxy does it): the fetch itself will tell
    return any(special_address(str(info[4][0])) for info in infos)


def hold_credentialed_move(columns: dict, configured: str, has_credentials: bool, *,
                           failed: bool) -> dict:
    """A poll's feed-state COLUMNS, with a permanent move to another origin held back for a
    feed that sends credentials.

    Moving it would hand the credentials (or the trust in its answers) to another
    host; the new address is kept in `moved_to` instead, for the user to confirm by
    editing feeds.toml. A poll that succeeds without being moved away clears it.
    """
    target = columns.get("url")
    if target is None:
        if not failed:
            columns["moved_to"] = None
        return columns
    if has_credentials and not credentials_allowed(configured, target):
        del columns["url"]
        columns["moved_to"] = mask_url(target)
    else:
        columns["moved_to"] = None
    return columns
