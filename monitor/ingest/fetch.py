"""Fetch feeds politely and defensively: conditional GET, bounded bodies, deadlines, limits.

Every problem a remote server can cause (DNS, TLS, refused connections, slow
drips, gzip bombs, redirect loops, HTTP errors) comes back as a FetchResult with
outcome ERROR and a short message that names the URL without credentials, so
one bad feed can never crash a poll or leak a secret into the logs.

Proxies come from the environment (see `monitor.ingest.proxy`, which honours CIDR
entries in NO_PROXY).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import hashlib
import os
import re
import socket
import ssl
import time
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urljoin, urlsplit

import httpx

from monitor.ingest.origins import credentials_allowed, in_private_network, origin
from monitor.ingest.proxy import environment_transport
from monitor.masking import mask_url
from monitor.models import FetchOutcome, FetchRequest, FetchResult, FetchSettings
from monitor.urls import DEFAULT_PORTS, port_or_default, strip_userinfo

ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
ACCEPT_ENCODING = "gzip, deflate"  # no br: we decompress ourselves, with a cap
MAX_RETRY_AFTER = timedelta(days=7)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")
# The body is handed over decoded, so these would describe bytes nobody sees.
DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def body_hash(body: bytes) -> str:
    """sha256 hex of a decoded body: an unchanged 200 is detected by this."""
    return hashlib.sha256(body).hexdigest()


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After (delay seconds or HTTP-date) as aware UTC, clamped to [now, now + 7 days]."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return now + timedelta(seconds=min(int(value), MAX_RETRY_AFTER.total_seconds()))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when.astimezone(UTC), now), now + MAX_RETRY_AFTER)


def redact_url(url: str) -> str:
    """The URL without `user:password@` and with secret query values masked, safe to show
    in messages and logs."""
    url = _CONTROL_CHARS.sub(lambda found: quote(found.group()), url)  # never raw into a terminal
    return mask_url(strip_userinfo(url))


class _Failure(Exception):
    """A classified fetch problem; turned into an ERROR result, never seen by callers."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _size(limit: int) -> str:
    mb = 1024 * 1024
    return f"{limit // mb} MB" if limit % mb == 0 else f"{limit} bytes"


class _BoundedDecoder:
    """Decompress gzip/deflate incrementally, refusing to produce more than `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise _Failure("decode", f"unsupported Content-Encoding {encoding!r}")
        self._encoding = encoding
        self._limit = limit
        self._size = 0
        self._fed = 0
        self._pending = b""  # deflate: the first bytes, until we know zlib-wrapped or raw
        self._inflater: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        self._fed += len(data)
        if self._encoding in ("", "identity"):
            return self._count(data)
        if self._inflater is None:
            self._pending += data
            if len(self._pending) < 2:
                return b""
            data, self._pending = self._pending, b""
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_header(data)
                                                else -zlib.MAX_WBITS)
        pieces = []
        try:
            while data:
                piece = self._inflater.decompress(data, self._limit - self._size + 1)
                pieces.append(self._count(piece))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise _Failure("decode", f"corrupt {self._encoding} body ({exc})") from None
        return b"".join(pieces)

    def finish(self) -> bytes:
        """Check the compressed stream really ended: a cut-off body must not parse as whole."""
        if self._encoding in ("", "identity") or not self._fed:
            return b""
        if self._inflater is None or not self._inflater.eof:
            raise _Failure("decode", f"truncated {self._encoding} body")
        return self._count(self._inflater.flush())

    def _count(self, data: bytes) -> bytes:
        self._size += len(data)
        if self._size > self._limit:
            raise _Failure("too_large", f"body exceeds {_size(self._limit)} limit")
        return data


def _is_zlib_header(data: bytes) -> bool:
    """RFC 1950 header check: servers send 'deflate' both zlib-wrapped and raw."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _Progress:
    """Where a fetch got to, so that an error still reports the URL and bytes involved."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bytes_read = 0


class Fetcher:
    """One shared httpx client, a global and a per-host:port concurrency limit.

    Proxies are read from the environment when the Fetcher is made; a given
    `transport` (tests) is used as it is, never proxied, as httpx does.
    """

    def __init__(self, settings: FetchSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        # Our semaphores do the limiting, outside the deadline; a pool cap would
        # make queued fetches time out instead of waiting their turn.
        limits = httpx.Limits(max_connections=None,
                              max_keepalive_connections=settings.global_limit)
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else environment_transport(limits),
            follow_redirects=False,  # followed by hand: only leading 301/308 move a feed
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                  write=settings.connect_timeout, pool=settings.deadline),
            headers={"User-Agent": settings.user_agent, "Accept": ACCEPT,
                     "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._global_slots = asyncio.Semaphore(settings.global_limit)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, request: FetchRequest, now: datetime) -> FetchResult:
        """Fetch one feed; every network, HTTP or content problem becomes an ERROR result.

        The deadline and `duration` start once a concurrency slot is free, so waiting
        behind other fetches to the same host never counts as the feed being slow.
        """
        host_slots = self._host_slots.setdefault(
            _host_key(request.url), asyncio.Semaphore(self._settings.per_host_limit))
        async with self._global_slots, host_slots:
            started = time.monotonic()
            progress = _Progress(request.url)
            try:
                async with asyncio.timeout(self._settings.deadline):
                    result = await self._fetch(request, now, progress)
            except TimeoutError:
                failure = _Failure("timeout", "no complete response within the "
                                   f"{self._settings.deadline:g} s deadline")
            except _Failure as exc:
                failure = exc
            except (httpx.HTTPError, httpx.InvalidURL, UnicodeEncodeError) as exc:
                failure = _classify(exc)
            else:
                return dataclasses.replace(result, bytes_read=progress.bytes_read,
                                           duration=time.monotonic() - started)
        return FetchResult(
            outcome=FetchOutcome.ERROR, url=request.url, final_url=progress.url,
            error_kind=failure.kind,
            error=f"{failure.message} ({redact_url(progress.url)})",
            bytes_read=progress.bytes_read, duration=time.monotonic() - started)

    async def _fetch(self, request: FetchRequest, now: datetime,
                     progress: _Progress) -> FetchResult:
        response, permanent_url = await self._open(request, progress)
        try:
            return await self._answer(request, response, now, progress, permanent_url)
        finally:
            await response.aclose()

    async def _open(self, request: FetchRequest,
                    progress: _Progress) -> tuple[httpx.Response, str | None]:
        """GET, following redirects; the permanent URL is the end of the leading 301/308 run."""
        seen = {request.url}
        permanent_url: str | None = None
        leading_permanent = True
        home = request.configured or request.url
        home_private: bool | None = None  # looked up on the first request that leaves home
        for hops in range(self._settings.max_redirects + 1):
            if origin(progress.url) != origin(home) and await in_private_network(progress.url):
                if home_private is None:
                    home_private = await in_private_network(home)
                if not home_private:
                    raise _Failure("redirect", "refused a redirect into a private network "
                                   f"({redact_url(progress.url)}): the feed's own address is public")
            response = await self._client.send(
                self._client.build_request("GET", progress.url,
                                           headers=_request_headers(request, progress.url)),
                stream=True)
            if response.status_code not in REDIRECT_STATUSES:
                return response, permanent_url
            await response.aclose()
            location = response.headers.get("location", "").strip()
            if not location:
                raise _Failure("redirect", f"HTTP {response.status_code} without a Location")
            if hops == self._settings.max_redirects:
                raise _Failure("redirect", f"more than {hops} redirects")
            target = urljoin(progress.url, location)
            if urlsplit(target).scheme not in DEFAULT_PORTS:
                raise _Failure("redirect", f"redirect to unsupported URL {redact_url(target)}")
            if target in seen:
                raise _Failure("redirect", f"redirect loop back to {redact_url(target)}")
            leading_permanent = leading_permanent and response.status_code in PERMANENT_REDIRECTS
            if leading_permanent:
                permanent_url = target
            seen.add(target)
            progress.url = target
        raise AssertionError("unreachable: the loop returns or raises")

    async def _answer(self, request: FetchRequest, response: httpx.Response, now: datetime,
                      progress: _Progress, permanent_url: str | None) -> FetchResult:
        status = response.status_code
        common = {"url": request.url, "final_url": progress.url,
                  "permanent_url": permanent_url, "status": status,
                  "headers": {key: value for key, value in response.headers.items()
                              if key not in DROPPED_HEADERS}}
        if status == 304:
            return FetchResult(FetchOutcome.NOT_MODIFIED, **common,
                               etag=response.headers.get("etag", request.etag),
                               last_modified=response.headers.get("last-modified",
                                                                  request.last_modified))
        if status == 410:
            return FetchResult(FetchOutcome.GONE, **common)
        if not 200 <= status < 300:
            retry_after = (parse_retry_after(response.headers.get("retry-after"), now)
                           if status in (429, 503) else None)
            return FetchResult(FetchOutcome.ERROR, **common, retry_after=retry_after,
                               error_kind="http",
                               error=f"HTTP {status} {response.reason_phrase} "
                                     f"({redact_url(progress.url)})")
        body = await self._read_body(response, progress)
        digest = body_hash(body)
        validators = {"etag": response.headers.get("etag"),
                      "last_modified": response.headers.get("last-modified")}
        if digest == request.body_hash:
            return FetchResult(FetchOutcome.UNCHANGED, **common, **validators, body_hash=digest)
        return FetchResult(FetchOutcome.OK, **common, **validators, body=body, body_hash=digest)

    async def _read_body(self, response: httpx.Response, progress: _Progress) -> bytes:
        """Read raw bytes and decompress them ourselves, both capped at max_body_bytes."""
        limit = self._settings.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Failure("too_large", f"body exceeds {_size(limit)} limit")
        decoder = _BoundedDecoder(response.headers.get("content-encoding", ""), limit)
        chunks = []
        try:
            async for raw in response.aiter_raw():
                progress.bytes_read += len(raw)
                if progress.bytes_read > limit:
                    raise _Failure("too_large", f"body exceeds {_size(limit)} limit")
                chunks.append(decoder.feed(raw))
        except httpx.TimeoutException:
            raise
        except httpx.TransportError as exc:
            raise _Failure("protocol",
                           f"connection lost while reading the body: {_reason(exc)}") from None
        chunks.append(decoder.finish())
        return b"".join(chunks)


def _host_key(url: str) -> str:
    """host:port, the unit of politeness; an unparsable URL gets its own key and fails later."""
    try:
        parts = urlsplit(url)
        port = port_or_default(parts)
    except ValueError:
        return url
    return f"{parts.hostname}:{port}"


def _request_headers(request: FetchRequest, url: str) -> dict[str, str]:
    """Validators always; the feed's own headers (credentials) only at the configured origin."""
    headers = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    if credentials_allowed(request.configured or request.url, url):
        headers.update(request.headers)
    return headers


def _classify(exc: Exception) -> _Failure:
    """Map an httpx exception to an error kind and a short message without secrets."""
    if isinstance(exc, httpx.TimeoutException):
        phase = {httpx.ConnectTimeout: "connecting", httpx.ReadTimeout: "waiting for data",
                 httpx.WriteTimeout: "sending the request",
                 httpx.PoolTimeout: "waiting for a free connection"}
        return _Failure("timeout", f"timed out {phase.get(type(exc), 'talking to the server')}")
    chain = _exception_chain(exc)
    if any(isinstance(link, (ssl.SSLError, ssl.CertificateError)) for link in chain):
        return _Failure("tls", f"TLS error: {_reason(exc)}")
    if any(isinstance(link, socket.gaierror) for link in chain):
        return _Failure("dns", f"DNS lookup failed: {_reason(exc)}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return _Failure("protocol", f"invalid HTTP response: {str(exc)[:120]}")
    if isinstance(exc, (httpx.LocalProtocolError, UnicodeEncodeError)):
        return _Failure("protocol", "invalid request header (check the feed's headers)")
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return _Failure("connect", "not a fetchable http(s) URL")
    return _Failure("connect", f"could not connect: {_reason(exc)}")


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain


def _reason(exc: BaseException) -> str:
    """The most specific OS or TLS reason in the chain, e.g. 'Connection refused'."""
    for link in _exception_chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError) and link.verify_message:
            return link.verify_message
        if isinstance(link, ssl.SSLError) and link.reason:
            return link.reason.lower().replace("_", " ")
        if isinstance(link, socket.gaierror) and link.strerror:
            return link.strerror
        if isinstance(link, OSError) and link.errno:
            return os.strerror(link.errno)
    return type(exc).__name__
