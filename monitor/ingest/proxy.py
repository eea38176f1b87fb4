"""Which requests go through a proxy: the environment's proxies, with a NO_PROXY that works.

Proxies are read as httpx reads them (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, in
either case), but NO_PROXY is matched here, per request, because httpx cannot
express CIDR entries (it matches `10.0.0.0/8` as the one host 10.0.0.0, and
raises on an IPv6 network); see `NoProxy`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from monitor.urls import port_or_default

log = logging.getLogger("monitor.ingest.proxy")



_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NO_PROXY_SEPARATORS = re.compile(r"[\s,]+")
_NO_PROXY_NAME = re.compile(r"\.?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


@dataclass(frozen=True)
class _NoProxyEntry:
    """One NO_PROXY entry: a network, or a name ('.name' meaning its subdomains only)."""

    network: _IPNetwork | None = None
    name: str = ""
    port: int | None = None
    scheme: str | None = None  # httpx also accepts "http://host" entries

    def matches(self, scheme: str, host: str, address: _IPAddress | None,
                port: int | None) -> bool:
        if self.scheme not in (None, scheme) or self.port not in (None, port):
            return False
        if self.network is not None:
            return address is not None and address in self.network
        if address is not None:
            return False  # a literal IP is only ever matched by IP and CIDR entries
        if self.name.startswith("."):
            return host.endswith(self.name)
        return host == self.name or host.endswith("." + self.name)


@dataclass(frozen=True)
class NoProxy:
    """NO_PROXY, parsed once: which URLs are fetched directly although a proxy is set.

    Names match as in httpx and Go: `example.com` is that host and its subdomains,
    `.example.com` (or `*.example.com`) its subdomains only. An IP address matches
    itself, and a CIDR entry (`10.0.0.0/8`, `fd00::/8`) every literal IP inside it,
    which httpx ignores. Host names are never resolved for this (curl does the
    same), so `localhost` is not inside `127.0.0.0/8`. `*` means every host, a
    `:port` suffix limits an entry to that port (`[::1]:8080` for IPv6). Entries
    are separated by commas or whitespace; one that can match nothing is listed in
    `invalid` and skipped, so a typo costs that entry, not the whole list.
    """

    entries: tuple[_NoProxyEntry, ...] = ()
    everything: bool = False
    invalid: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> NoProxy:
        texts = [text for text in _NO_PROXY_SEPARATORS.split(value) if text]
        parsed = {text: _parse_no_proxy_entry(text) for text in texts if text != "*"}
        return cls(entries=tuple(entry for entry in parsed.values() if entry is not None),
                   everything="*" in texts,
                   invalid=tuple(text for text, entry in parsed.items() if entry is None))

    def bypasses(self, url: str) -> bool:
        """Whether URL goes direct; an unparsable URL does not (its fetch fails anyway)."""
        if self.everything:
            return True
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            port = port_or_default(parts)
        except ValueError:
            return False
        host = parts.hostname or ""
        address = _ip_address(host)
        return any(entry.matches(scheme, host, address, port) for entry in self.entries)


def _parse_no_proxy_entry(text: str) -> _NoProxyEntry | None:
    """One entry, or None when it can match nothing: a bad network, port or name."""
    scheme, _, rest = text.lower().rpartition("://")
    try:
        host, port = _split_port(rest)
        network = _ip_network(host)
    except ValueError:
        return None
    if network is not None:
        return _NoProxyEntry(network=network, port=port, scheme=scheme or None)
    name = host[1:] if host.startswith("*.") else host
    if not _NO_PROXY_NAME.fullmatch(name):
        return None
    return _NoProxyEntry(name=name, port=port, scheme=scheme or None)


def _split_port(text: str) -> tuple[str, int | None]:
    """HOST[:PORT]; a bare IPv6 address or network has no port, a bracketed one may."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad bracketed host {text!r}")
        return host, _port(rest[1:]) if rest else None
    if text.count(":") != 1:
        return text, None
    host, port = text.split(":")
    return host, _port(port)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ValueError(f"bad port {text!r}")
    return int(text)


def _ip_network(host: str) -> _IPNetwork | None:
    """The network an IP or CIDR entry names, None for a name; ValueError for a bad CIDR."""
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        if "/" in host:
            raise
        return None


def _ip_address(host: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class _ProxyRouter(httpx.AsyncBaseTransport):
    """Sends each request direct or through its scheme's proxy, judged on its own URL.

    httpx picks proxies by URL patterns, which cannot say "inside 10.0.0.0/8" (and
    it raises on an IPv6 CIDR in NO_PROXY), so the choice is made here instead;
    being the transport, it sees every redirect hop as a request of its own.
    """

    def __init__(self, direct: httpx.AsyncBaseTransport,
                 proxies: Mapping[str, httpx.AsyncBaseTransport], no_proxy: NoProxy) -> None:
        self._direct = direct
        self._proxies = proxies
        self._no_proxy = no_proxy

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if self._no_proxy.bypasses(str(url)):
            return self._direct
        return self._proxies.get(url.scheme) or self._proxies.get("all") or self._direct

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._direct, *self._proxies.values()):
            await transport.aclose()


class _DirectTransport(httpx.AsyncBaseTransport):
    """Direct requests: http:// on a transport that loads no certificates, https:// (and
    anything else) on a verifying transport made at its first request.

    httpx reads the whole CA bundle when a transport is made, about 45 ms or a tenth of
    an all-304 re-poll, which a run polling only plain-HTTP feeds never needs. The
    plain transport's context trusts no certificate at all, so even a TLS connection it
    was never meant to make would fail rather than go unverified.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._plain = httpx.AsyncHTTPTransport(limits=limits, verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self._verifying: httpx.AsyncHTTPTransport | None = None

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if url.scheme == "http":
            return self._plain
        if self._verifying is None:
            self._verifying = httpx.AsyncHTTPTransport(limits=self._limits)
        return self._verifying

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._verifying is not None:
            await self._verifying.aclose()


def environment_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """Direct, or routed through the proxies the environment names, read as httpx reads them."""
    found = urllib.request.getproxies()
    proxies = {scheme: httpx.AsyncHTTPTransport(
                   limits=limits, proxy=url if "://" in url else f"http://{url}")
               for scheme in ("http", "https", "all") if (url := found.get(scheme))}
    direct = _DirectTransport(limits)
    if not proxies:
        return direct
    no_proxy = NoProxy.parse(found.get("no", ""))
    for entry in no_proxy.invalid:
        log.warning("NO_PROXY entry %r is not a host name, IP address or network: ignored", entry)
    return _ProxyRouter(direct, proxies, no_proxy)
