"""A hostile feed server: one local HTTP server whose paths misbehave in every way a feed can.

Every misbehaviour is a `Case`: a small class registered by name that answers
one request and says what `monitor feeds list --json` should then show for the
feed (an `Outcome`: status and last_error_kind), which stories the daemon must
have stored once and which of them must alert once. A feed reaches a case in
one of two ways:

    /case/<name>/<feed>   always that case (the tests; one-off checks by hand)
    /feed/<feed>          the case a `Plan` picks for this feed's Nth poll (the chaos run)

The same route table is served on several loopback addresses (127.0.0.2 ...),
so the 301 "to another host" really changes host, and a feed that hangs holds
connections of one host only. Every answer is a pure function of the seed,
the feed and its poll number, so a rerun serves the same bytes. Everything
stays on loopback; requests for an external DTD or entity are recorded in
`leaks` (a safe parser never makes one).

    python -m bench.chaos.hostile --list          # the cases and their expected outcomes
    python -m bench.chaos.hostile --serve         # serve them until Ctrl-C
"""

from __future__ import annotations

import argparse
import email.utils
import functools
import hashlib
import random
import select
import socket
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from xml.sax.saxutils import escape

DEFAULT_HOSTS = tuple(f"127.0.0.{n}" for n in range(2, 10))
MARKER = "Zeppelin"  # the word the runs' watch rule looks for
# The runs give every feed this header, valued with the address of its own host: a
# request that carries it to another host is a credential that followed a redirect.
CREDENTIAL_HEADER = "X-Chaos-Key"
HEALTHY_WINDOW = 20  # stories a healthy feed keeps; one new story per poll
MIB = 1024 * 1024


# --------------------------------------------------------------------------
# what a response should lead to
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A feed's row in `monitor feeds list --json` after the daemon polled it."""

    status: str  # ok, error, gone, backing-off
    error_kind: str | None = None

    def __str__(self) -> str:
        return self.status + (f"/{self.error_kind}" if self.error_kind else "")


OK = Outcome("ok")


def failed(kind: str) -> Outcome:
    return Outcome("error", kind)


@dataclass(frozen=True)
class Served:
    """One answer the server gave, and what the daemon must make of it."""

    case: str
    feed: str
    poll: int  # the content version served (the feed's poll number, frozen by a Plan)
    outcomes: tuple[Outcome, ...]  # any of these is right
    stories: tuple[str, ...] = ()  # guids the daemon must store, once each
    alerts: tuple[str, ...] = ()  # guids whose alert must be delivered once
    final: bool = True  # False: a redirect the daemon follows within the same poll


@dataclass(frozen=True)
class Item:
    guid: str | None
    title: str  # text: escaped into the XML
    link: str | None = None
    description: str = ""  # text: escaped into the XML
    published: str | None = None  # as written in <pubDate>, valid or not


def rfc822(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def rss_document(title: str, items: Iterable[Item], *, prolog: str = "",
                 encoding: str = "UTF-8") -> str:
    """An RSS 2.0 document as text; `prolog` goes between the XML declaration and <rss>."""
    parts = [f'<?xml version="1.0" encoding="{encoding}"?>', prolog,
             '<rss version="2.0"><channel>',
             f"<title>{escape(title)}</title><link>https://chaos.example/</link>",
             "<description>hostile feed server</description><language>en</language>"]
    for item in items:
        parts.append("<item>")
        if item.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.description:
            parts.append(f"<description>{escape(item.description)}</description>")
        if item.published:
            parts.append(f"<pubDate>{escape(item.published)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(part for part in parts if part)


def story_ref(guid: str) -> str:
    """The tag every story title carries, so an alert's subject names its story."""
    return f"(ref {guid})"


def healthy_items(feed: str, poll: int, epoch: datetime, alert_every: int) -> list[Item]:
    """The last HEALTHY_WINDOW stories of a well-behaved feed; one in ALERT_EVERY alerts."""
    items = []
    for k in range(max(0, poll - HEALTHY_WINDOW + 1), poll + 1):
        guid = f"{feed}-s{k}"
        headline = (f"{MARKER} sighted over town {k}" if alerts(feed, k, alert_every)
                    else f"Council meets in town {k}")
        items.append(Item(guid, f"{headline} {story_ref(guid)}",
                          link=f"https://{feed}.chaos.example/story/{k}",
                          description=f"Story {k} of feed {feed}, told plainly.",
                          published=rfc822(epoch + timedelta(minutes=k))))
    return items


def alerts(feed: str, story_number: int, alert_every: int) -> bool:
    """Whether a healthy story carries the watch's marker word (spread evenly over feeds)."""
    return (story_number + zlib.crc32(feed.encode())) % alert_every == 0


# --------------------------------------------------------------------------
# one request
# --------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request to a case: the handler to answer on, and what the case may know."""

    handler: BaseHTTPRequestHandler
    server: HostileServer
    feed: str
    poll: int
    rng: random.Random  # seeded by (server seed, feed, poll): a rerun serves the same bytes
    next_poll_url: str  # where this feed's next poll would go, on another host

    @property
    def host(self) -> str:
        return self.handler.server.server_address[0]

    def url(self, path: str) -> str:
        """PATH on the host this request came to."""
        return self.server.url(path, self.server.hosts.index(self.host))

    def served(self, case: Case, *, outcomes: tuple[Outcome, ...] | None = None,
               stories: Iterable[str] = (), alerts: Iterable[str] = ()) -> Served:
        return Served(case.name, self.feed, self.poll, outcomes or case.expected,
                      tuple(stories), tuple(alerts), case.final)


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    headers = {"Content-Type": "application/rss+xml; charset=utf-8", **(headers or {})}
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def send_head(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    """A 200 head whose body the caller writes (and after which the connection closes)."""
    handler.close_connection = True
    handler.send_response(200)
    for key, value in {"Content-Type": "application/rss+xml", "Connection": "close",
                       **headers}.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.flush()


def client_gone(handler: BaseHTTPRequestHandler, timeout: float) -> bool:
    """Wait up to TIMEOUT for the client to hang up; True once it has."""
    sock = handler.connection
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


# --------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------


class Case:
    """One way a feed server can behave. Subclasses answer `respond` and register with @case."""

    name: ClassVar[str]
    expected: ClassVar[tuple[Outcome, ...]]  # what `feeds list` may show afterwards
    final: ClassVar[bool] = True

    def respond(self, ex: Exchange) -> Served:
        raise NotImplementedError

    def hop(self, ex: Exchange, step: int) -> None:
        """A later step of a redirect this case started (same poll, not counted)."""
        send(ex.handler, 404, b"no such step", {"Content-Type": "text/plain"})


CASES: dict[str, Case] = {}


def case(cls: type[Case]) -> type[Case]:
    CASES[cls.name] = cls()
    return cls


def hostile_cases() -> list[str]:
    return [name for name in CASES if name != Healthy.name]


def _feed_of_items(ex: Exchange, case_: Case, items: list[Item], *,
                   alerting: Iterable[str] = (), prolog: str = "") -> Served:
    body = rss_document(f"{case_.name} {ex.feed}", items, prolog=prolog).encode("utf-8")
    send(ex.handler, 200, body)
    return ex.served(case_, stories=dict.fromkeys(i.guid for i in items if i.guid),
                     alerts=alerting)


@case
class Healthy(Case):
    """A well-behaved feed: one new story per poll, ETag and 304 when nothing changed."""

    name = "healthy"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        items = healthy_items(ex.feed, ex.poll, ex.server.epoch, ex.server.alert_every)
        body = rss_document(f"Healthy {ex.feed}", items).encode("utf-8")
        tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if ex.handler.headers.get("If-None-Match") == tag:
            send(ex.handler, 304, b"", {"ETag": tag})
        else:
            send(ex.handler, 200, body, {"ETag": tag})
        return ex.served(self, stories=[item.guid for item in items],
                         alerts=[item.guid for item in items if MARKER in item.title])


@case
class SlowDrip(Case):
    """Headers at once, then one byte per `drip_every` seconds: only the deadline stops it."""

    name = "slow_drip"
    expected = (failed("timeout"),)

    def respond(self, ex: Exchange) -> Served:
        body = rss_document("drip", [Item("drip-1", "Drip")]).encode()
        send_head(ex.handler, {"Content-Length": str(len(body))})
        for index in range(len(body)):
            if ex.server.stopping.is_set() or client_gone(ex.handler, ex.server.drip_every):
                break
            ex.handler.wfile.write(body[index:index + 1])
            ex.handler.wfile.flush()
        return ex.served(self)


@case
class NeverAnswer(Case):
    """Accepts the connection and reads the request, then says nothing at all."""

    name = "never_answer"
    expected = (failed("timeout"),)

    def respond(self, ex: Exchange) -> Served:
        ex.handler.close_connection = True
        limit = time.monotonic() + ex.server.hang_limit
        while time.monotonic() < limit and not ex.server.stopping.is_set():
            if client_gone(ex.handler, 0.2):
                break
        return ex.served(self)


@case
class ResetMidBody(Case):
    """Promises 100 kB, sends the start of a feed, then resets the connection (RST)."""

    name = "reset_mid_body"
    expected = (failed("protocol"),)

    def respond(self, ex: Exchange) -> Served:
        send_head(ex.handler, {"Content-Length": "100000"})
        ex.handler.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>cut')
        ex.handler.wfile.flush()
        sock = ex.handler.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ex.handler.rfile.close()  # holds a reference to the socket: close it, or no RST
        sock.close()
        return ex.served(self)


@case
class EndlessBody(Case):
    """Chunked feed items that never end."""

    name = "endless_body"
    expected = (failed("too_large"),)

    def respond(self, ex: Exchange) -> Served:
        send_head(ex.handler, {"Transfer-Encoding": "chunked"})
        chunk = b"<item><title>more and more</title></item>\n" * 1500
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        start = b'<?xml version="1.0"?><rss version="2.0"><channel>'
        ex.handler.wfile.write(b"%x\r\n%s\r\n" % (len(start), start))
        sent = 0
        while sent < ex.server.hostile_body_cap and not ex.server.stopping.is_set():
            ex.handler.wfile.write(frame)
            sent += len(chunk)
        return ex.served(self)


@case
class EndlessHeaders(Case):
    """A status line, then header lines that never end."""

    name = "endless_headers"
    expected = (failed("protocol"),)

    def respond(self, ex: Exchange) -> Served:
        ex.handler.close_connection = True
        ex.handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        sent = 0
        while sent < ex.server.hostile_body_cap and not ex.server.stopping.is_set():
            ex.handler.wfile.write(line)
            sent += len(line)
        return ex.served(self)


@case
class HundredMegabytes(Case):
    """An honest Content-Length of 100 MB, and the body to go with it."""

    name = "body_100mb"
    expected = (failed("too_large"),)

    def respond(self, ex: Exchange) -> Served:
        size = 100 * MIB
        send_head(ex.handler, {"Content-Length": str(size)})
        block = b" " * (64 * 1024)
        for _ in range(size // len(block)):
            if ex.server.stopping.is_set():
                break
            ex.handler.wfile.write(block)
        return ex.served(self)


def _bomb_blocks(count: int) -> bytes:
    """COUNT copies of a full-flushed deflate block of 1 MiB of zeros (1 kB each)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH)
    return block * count + b"\x03\x00"  # an empty final block ends the stream


@functools.cache
def gzip_bomb(mebibytes: int = 1024) -> bytes:
    """About 1 MB of gzip that inflates to MEBIBYTES MiB of zeros."""
    crc = 0
    zeros = bytes(MIB)
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + _bomb_blocks(mebibytes) + struct.pack("<II", crc, (mebibytes * MIB) & 0xFFFFFFFF)


@functools.cache
def deflate_bomb(mebibytes: int = 1024) -> bytes:
    """About 1 MB of zlib-wrapped deflate that inflates to MEBIBYTES MiB of zeros."""
    adler = 1
    zeros = bytes(MIB)
    for _ in range(mebibytes):
        adler = zlib.adler32(zeros, adler)
    return b"\x78\xda" + _bomb_blocks(mebibytes) + struct.pack(">I", adler)


@case
class GzipBomb(Case):
    """1 MB on the wire, 1 GiB once gunzipped."""

    name = "gzip_bomb"
    expected = (failed("too_large"),)

    def respond(self, ex: Exchange) -> Served:
        send(ex.handler, 200, gzip_bomb(), {"Content-Encoding": "gzip"})
        return ex.served(self)


@case
class DeflateBomb(Case):
    """1 MB on the wire, 1 GiB once inflated."""

    name = "deflate_bomb"
    expected = (failed("too_large"),)

    def respond(self, ex: Exchange) -> Served:
        send(ex.handler, 200, deflate_bomb(), {"Content-Encoding": "deflate"})
        return ex.served(self)


@case
class CorruptGzip(Case):
    """Content-Encoding: gzip on bytes that are no gzip stream."""

    name = "corrupt_gzip"
    expected = (failed("decode"),)

    def respond(self, ex: Exchange) -> Served:
        body = b"\x1f\x8b\x08\x00" + bytes(ex.rng.getrandbits(8) for _ in range(4096))
        send(ex.handler, 200, body, {"Content-Encoding": "gzip"})
        return ex.served(self)


def _entity_feed(ex: Exchange, case_: Case, prolog: str, reference: str) -> Served:
    items = [Item(f"{case_.name}-1", "PLACEHOLDER", description="PLACEHOLDER"),
             Item(f"{case_.name}-2", "Nothing to see")]
    body = rss_document(case_.name, items, prolog=prolog).replace("PLACEHOLDER", reference)
    send(ex.handler, 200, body.encode())
    return ex.served(case_, stories=[item.guid for item in items])


@case
class EntityBlowup(Case):
    """A 50 kB entity used 2,000 times (quadratic blow-up): stored unexpanded."""

    name = "entity_blowup"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        prolog = f'<!DOCTYPE rss [<!ENTITY big "{"BLOWUP " * 7000}">]>'
        return _entity_feed(ex, self, prolog, "&big;" * 2000)


@case
class BillionLaughs(Case):
    """Ten levels of ten-fold entities: 10^9 laughs if expanded."""

    name = "billion_laughs"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        levels = ['<!ENTITY lol0 "LAUGH">'] + [
            f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
        return _entity_feed(ex, self, f"<!DOCTYPE rss [{''.join(levels)}]>", "&lol9;")


@case
class XxeFile(Case):
    """External entities pointing at /etc/passwd: never read."""

    name = "xxe_file"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        prolog = ('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
                  '<!ENTITY % remote SYSTEM "file:///etc/hostname"> %remote;]>')
        return _entity_feed(ex, self, prolog, "&xxe;")


@case
class XxeExternalDtd(Case):
    """A DTD and entities on this very server: any request for them lands in `leaks`."""

    name = "xxe_external_dtd"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        dtd, secret = ex.url(f"/leak/{ex.feed}/dtd"), ex.url(f"/leak/{ex.feed}/secret")
        prolog = (f'<!DOCTYPE rss SYSTEM "{dtd}" [<!ENTITY ext SYSTEM "{secret}">'
                  f'<!ENTITY % p SYSTEM "{dtd}"> %p;]>')
        return _entity_feed(ex, self, prolog, "&ext;")


def _raw_feed(ex: Exchange, case_: Case, body: bytes, content_type: str,
              guids: Sequence[str]) -> Served:
    send(ex.handler, 200, body, {"Content-Type": content_type})
    return ex.served(case_, stories=guids)


@case
class AttributeFlood(Case):
    """One element with 50,000 attributes: minutes of parser CPU unless refused."""

    name = "attribute_flood"
    expected = (failed("not_a_feed"),)

    def respond(self, ex: Exchange) -> Served:
        attributes = " ".join(f'a{n}="1"' for n in range(50_000))
        body = rss_document("attributes", [Item("attr-1", "Flood")]).replace(
            "<item>", f"<item {attributes}>", 1)
        send(ex.handler, 200, body.encode())
        return ex.served(self)


@case
class InvalidUtf8(Case):
    """Declared UTF-8, with bytes that are not UTF-8 in the titles."""

    name = "invalid_utf8"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        body = rss_document("bad bytes", [Item("bad-1", "Broken BYTES here"),
                                          Item("bad-2", "More BYTES")]).encode()
        body = body.replace(b"BYTES", b"\xff\xfe\xc3\x28\xa0\xa1")
        return _raw_feed(ex, self, body, "application/rss+xml; charset=utf-8", ["bad-1", "bad-2"])


@case
class WrongCharset(Case):
    """Cyrillic UTF-8 bytes labelled koi8-r in the header and windows-1251 in the XML."""

    name = "wrong_charset"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        body = rss_document("Новини", [Item("cs-1", "Київ: новини дня")],
                            encoding="windows-1251").encode("utf-8")
        return _raw_feed(ex, self, body, "application/rss+xml; charset=koi8-r", ["cs-1"])


@case
class UnknownCharset(Case):
    """A charset nobody has heard of, in the header and in the XML declaration."""

    name = "unknown_charset"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        body = rss_document("odd", [Item("uc-1", "Plain words")], encoding="x-no-such-charset")
        return _raw_feed(ex, self, body.encode(), "text/xml; charset=x-no-such-charset", ["uc-1"])


@case
class HtmlPage(Case):
    """A web page (a login wall, a CDN challenge) where the feed used to be."""

    name = "html_page"
    expected = (failed("not_a_feed"),)

    def respond(self, ex: Exchange) -> Served:
        body = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
                b"<body><h1>Checking your browser</h1><p>Please enable JavaScript.</p></body></html>")
        return _raw_feed(ex, self, body, "text/html; charset=utf-8", [])


@case
class JsonErrorPage(Case):
    """A JSON error document served with 200."""

    name = "json_error"
    expected = (failed("not_a_feed"),)

    def respond(self, ex: Exchange) -> Served:
        body = b'{"error": {"code": 500, "message": "upstream timeout"}, "items": null}'
        return _raw_feed(ex, self, body, "application/json", [])


def _redirect(handler: BaseHTTPRequestHandler, status: int, location: str) -> None:
    send(handler, status, b"", {"Location": location, "Content-Type": "text/plain"})


@case
class RedirectLoop(Case):
    """302 to a second URL, which 302s back to the first."""

    name = "redirect_loop"
    expected = (failed("redirect"),)

    def respond(self, ex: Exchange) -> Served:
        _redirect(ex.handler, 302, f"/hop/{self.name}/{ex.feed}/1")
        return ex.served(self)

    def hop(self, ex: Exchange, step: int) -> None:
        _redirect(ex.handler, 302, f"/hop/{self.name}/{ex.feed}/{2 if step == 1 else 1}")


@case
class RedirectChain(Case):
    """Twenty 301s in a row before a real feed: more than the fetcher follows."""

    name = "redirect_chain_20"
    expected = (failed("redirect"),)
    HOPS = 20

    def respond(self, ex: Exchange) -> Served:
        _redirect(ex.handler, 301, f"/hop/{self.name}/{ex.feed}/1")
        return ex.served(self)

    def hop(self, ex: Exchange, step: int) -> None:
        if step < self.HOPS:
            _redirect(ex.handler, 301, f"/hop/{self.name}/{ex.feed}/{step + 1}")
        else:
            send(ex.handler, 200, rss_document("end of chain", [Item("chain-1", "End")]).encode())


@case
class MovedToAnotherHost(Case):
    """301 to the same feed on another loopback address: the feed's URL moves there.

    Not final: the request it redirects to is the feed's next poll, whose own
    case decides the outcome.
    """

    name = "moved_other_host"
    expected = (OK,)
    final = False

    def respond(self, ex: Exchange) -> Served:
        _redirect(ex.handler, 301, ex.next_poll_url)
        return ex.served(self)


@case
class Gone(Case):
    """410 Gone: the daemon must stop polling the feed."""

    name = "gone_410"
    expected = (Outcome("gone", "gone"),)

    def respond(self, ex: Exchange) -> Served:
        send(ex.handler, 410, b"gone", {"Content-Type": "text/plain"})
        return ex.served(self)


BACKING_OFF = (Outcome("backing-off", "http"), failed("http"))  # until / after Retry-After


@case
class TooManyRequests(Case):
    """429 with Retry-After in seconds."""

    name = "too_many_429"
    expected = BACKING_OFF

    def respond(self, ex: Exchange) -> Served:
        send(ex.handler, 429, b"slow down",
             {"Content-Type": "text/plain", "Retry-After": str(ex.server.retry_after)})
        return ex.served(self)


@case
class Unavailable(Case):
    """503 with Retry-After as an HTTP date."""

    name = "unavailable_503"
    expected = BACKING_OFF

    def respond(self, ex: Exchange) -> Served:
        when = datetime.now(UTC) + timedelta(seconds=ex.server.retry_after + 1)
        send(ex.handler, 503, b"maintenance",
             {"Content-Type": "text/plain", "Retry-After": email.utils.format_datetime(when, usegmt=True)})
        return ex.served(self)


@case
class RandomServerError(Case):
    """Half the polls (seeded) get a 500; the others the healthy feed."""

    name = "random_500"
    expected = (failed("http"), OK)

    def respond(self, ex: Exchange) -> Served:
        if ex.rng.random() < 0.5:
            send(ex.handler, 500, b"internal error", {"Content-Type": "text/plain"})
            return ex.served(self, outcomes=(failed("http"),))
        healthy = CASES[Healthy.name].respond(ex)
        return ex.served(self, outcomes=(OK,), stories=healthy.stories, alerts=healthy.alerts)


@case
class GuidChurn(Case):
    """The same three stories under new guids at every poll: each is a new story."""

    name = "guid_churn"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        items = [Item(f"churn-{ex.rng.getrandbits(64):016x}", f"Evergreen story {n}",
                      link=f"https://churn.example/{ex.feed}/{ex.poll}/{n}") for n in range(3)]
        return _feed_of_items(ex, self, items)


@case
class FiveThousandItems(Case):
    """5,000 stories in one document."""

    name = "items_5000"
    expected = (OK,)
    COUNT = 5000

    def respond(self, ex: Exchange) -> Served:
        when = rfc822(ex.server.epoch)
        items = [Item(f"bulk-{n}", f"Bulk story number {n}", link=f"https://bulk.example/{ex.feed}/{n}",
                      published=when) for n in range(self.COUNT)]
        return _feed_of_items(ex, self, items)


@case
class DuplicateGuids(Case):
    """Each guid three times in one document, with different titles: the first one wins."""

    name = "duplicate_guids"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        items = [Item(f"dup-{n % 2}", f"Copy {n} of story {n % 2}") for n in range(6)]
        return _feed_of_items(ex, self, items)


@case
class OddDates(Case):
    """Dates far in the future, impossible and unparsable."""

    name = "odd_dates"
    expected = (OK,)
    DATES = ("Sat, 01 Jan 2200 00:00:00 +0000", "Mon, 31 Feb 2026 25:61:00 +0000",
             "yesterday at noon-ish", "Fri, 01 Jan 99999 00:00:00 GMT", "0000-00-00T00:00:00Z",
             "-1")

    def respond(self, ex: Exchange) -> Served:
        items = [Item(f"date-{n}", f"Dated oddly {n}", published=value)
                 for n, value in enumerate(self.DATES)]
        return _feed_of_items(ex, self, items)


@case
class MegabyteTitle(Case):
    """One title of a million characters."""

    name = "title_1mb"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        return _feed_of_items(ex, self, [Item("big-title", "Long " * 200_000),
                                         Item("small-title", "Short")])


@case
class BidiZeroWidth(Case):
    """Right-to-left overrides, zero-width characters and RTL scripts in titles."""

    name = "bidi_zero_width"
    expected = (OK,)
    TITLES = ("\u202egnp.exe\u202c invoice", "Zero\u200bwidth\u200c join\u200d\ufeff",
              "שלום עולם \u200f mixed", "مرحبا بالعالم \u061c", "\u2066isolated\u2069 text")

    def respond(self, ex: Exchange) -> Served:
        return _feed_of_items(ex, self, [Item(f"bidi-{n}", title) for n, title in enumerate(self.TITLES)])


@case
class MarkupInjection(Case):
    """Headlines carrying HTML and Markdown: they alert, and must arrive as inert text."""

    name = "markup_injection"
    expected = (OK,)

    def respond(self, ex: Exchange) -> Served:
        guid = f"{ex.feed}-inject"
        title = (f'{story_ref(guid)} {MARKER} <script>alert("x")</script> '
                 f"<img src=x onerror=alert(1)> **bold** [click](javascript:alert(1))")
        item = Item(guid, title, link=f"https://inject.example/{ex.feed}",
                    description='<a href="javascript:alert(2)">read</a> _under_ `code`',
                    published=rfc822(ex.server.epoch))
        return _feed_of_items(ex, self, [item], alerting=[guid])


@case
class MatchingBomb(Case):
    """One 200 kB story repeating the two words of the watch's NEAR rule 13,000 times each:
    comparing every pair of occurrences once held the matching thread for seconds per story."""

    name = "matching_bomb"
    expected = (OK,)
    WORDS = "airship hangar "  # the runs' watch: airship NEAR/3 hangar

    def respond(self, ex: Exchange) -> Served:
        guid = f"{ex.feed}-bomb"
        item = Item(guid, f"{story_ref(guid)} Airship hangar report",
                    link=f"https://bomb.example/{ex.feed}",
                    description=(self.WORDS * 14_000)[:200_000], published=rfc822(ex.server.epoch))
        return _feed_of_items(ex, self, [item], alerting=[guid])


@case
class TerminalEscapes(Case):
    """A JSON Feed whose titles and links carry terminal controls: ESC sequences that clear
    the screen or write the clipboard (OSC 52), 8-bit CSI, DEL. JSON can carry what XML cannot."""

    name = "terminal_escapes"
    expected = (OK,)
    TITLES = ("Clear \x1b[2J\x1b[H screen", "Clipboard \x1b]52;c;ZWNobyBvd25lZA==\x07 write",
              "Eight-bit \u009b31m CSI", "Delete \x7f char")

    def respond(self, ex: Exchange) -> Served:
        import json

        items = [{"id": f"esc-{n}", "title": title, "content_text": f"Body of {title}",
                  "url": f"https://esc.example/{n}\x1b]52;c;eA==\x07"}
                 for n, title in enumerate(self.TITLES)]
        body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "escapes",
                           "items": items}).encode()
        send(ex.handler, 200, body, {"Content-Type": "application/feed+json"})
        return ex.served(self, stories=[item["id"] for item in items])


# --------------------------------------------------------------------------
# which case a feed gets at each poll
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Healthy or hostile for each feed at each poll, from the seed alone.

    At each poll a feed is hostile with probability `hostile_share`, with a
    case drawn uniformly from `cases`; so one feed can be hostile in one cycle
    and healthy in the next. From poll number `cycles` on, the feed keeps the
    case (and content) of its first final answer at or after that poll: the
    state it ends in is stable, so it can be checked.
    """

    seed: int
    hostile_share: float
    cycles: int | None = None
    cases: tuple[str, ...] = field(default_factory=lambda: tuple(hostile_cases()))

    def pick(self, feed: str, poll: int) -> str:
        rng = random.Random(f"plan:{self.seed}:{feed}:{poll}")
        if rng.random() >= self.hostile_share:
            return Healthy.name
        return rng.choice(self.cases)

    def case_for(self, feed: str, poll: int) -> tuple[str, int]:
        """(case name, content version) of the feed's poll number POLL."""
        if self.cycles is None or poll < self.cycles:
            return self.pick(feed, poll), poll
        settled = self.cycles
        while settled < poll and not CASES[self.pick(feed, settled)].final:
            settled += 1
        return self.pick(feed, settled), settled


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on a hostile answer are the point


class HostileServer:
    """One route table served on several loopback addresses, each on its own port."""

    def __init__(self, hosts: Sequence[str] = DEFAULT_HOSTS, *, seed: int = 0,
                 plan: Plan | None = None, drip_every: float = 0.25, hang_limit: float = 120.0,
                 retry_after: int = 3, hostile_body_cap: int = 1024 * MIB,
                 alert_every: int = 3) -> None:
        self.hosts = tuple(hosts)
        self.seed = seed
        self.plan = plan
        self.drip_every = drip_every  # seconds between two bytes of slow_drip
        self.hang_limit = hang_limit  # longest a never_answer connection is held
        self.retry_after = retry_after  # seconds, for 429 and 503
        self.hostile_body_cap = hostile_body_cap  # endless_body stops after this much
        self.alert_every = alert_every  # one healthy story in this many matches the watch
        self.epoch = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.stopping = threading.Event()
        self.history: dict[str, list[Served]] = defaultdict(list)
        self.leaks: list[str] = []  # requests for external DTDs or entities: must stay empty
        # requests that carried a feed's credential header to a host other than its own
        self.credential_leaks: list[str] = []
        self.requests = 0
        self._polls: dict[str, int] = defaultdict(int)
        self._frozen = False
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._listeners = [self._listener(host) for host in self.hosts]
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ addresses

    def url(self, path: str, host: int = 0) -> str:
        address, port = self._listeners[host % len(self.hosts)].server_address[:2]
        return f"http://{address}:{port}{path}"

    def feed_url(self, feed: str, host: int = 0) -> str:
        """A planned feed: its case changes with each poll."""
        return self.url(f"/feed/{feed}", host)

    def case_url(self, name: str, feed: str, host: int = 0) -> str:
        """A feed that always answers with case NAME."""
        if name not in CASES:
            raise KeyError(f"no hostile case {name!r}; known: {', '.join(CASES)}")
        return self.url(f"/case/{name}/{feed}", host)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> HostileServer:
        for listener in self._listeners:
            thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.1},
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for listener in self._listeners:
            listener.shutdown()
            listener.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def freeze(self) -> None:
        """From now on every feed answers as at its last poll: no new stories anywhere."""
        with self._lock:
            self._frozen = True

    # ------------------------------------------------------------ records

    def polls(self, feed: str) -> int:
        with self._lock:
            return self._polls[feed]

    def last_final(self, feed: str) -> Served | None:
        with self._lock:
            return next((s for s in reversed(self.history[feed]) if s.final), None)

    def wait_for_final(self, feed: str, count: int, timeout: float = 10.0) -> Served | None:
        """Block until FEED has COUNT final answers recorded (an answer is recorded once it
        is complete, which for a dripping case is after the client hung up)."""
        def done() -> bool:
            return sum(1 for s in self.history[feed] if s.final) >= count

        with self._answered:
            self._answered.wait_for(done, timeout)
        return self.last_final(feed)

    def served(self) -> list[Served]:
        with self._lock:
            return [s for answers in self.history.values() for s in answers]

    # ------------------------------------------------------------ requests

    def _listener(self, host: str) -> _Listener:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                try:
                    hostile._dispatch(self)
                except (OSError, ValueError):  # the client hung up, or we reset it
                    self.close_connection = True

        return _Listener((host, 0), Handler)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        home = handler.headers.get(CREDENTIAL_HEADER)
        with self._lock:
            self.requests += 1
            if home is not None and home != handler.server.server_address[0]:
                self.credential_leaks.append(f"{home} -> {handler.server.server_address[0]}"
                                             f"{handler.path}")
        parts = handler.path.split("?", 1)[0].strip("/").split("/")
        route: Callable[[BaseHTTPRequestHandler, list[str]], None] | None = {
            ("feed", 2): self._planned, ("case", 3): self._fixed,
            ("hop", 4): self._hop, ("leak", 3): self._leak,
        }.get((parts[0], len(parts)))
        if route is None:
            send(handler, 404, b"not found", {"Content-Type": "text/plain"})
            return
        route(handler, parts)

    def _planned(self, handler: BaseHTTPRequestHandler, parts: list[str]) -> None:
        feed = parts[1]
        poll = self._next_poll(feed)
        name, version = self.plan.case_for(feed, poll) if self.plan else (Healthy.name, poll)
        self._answer(handler, name, feed, version, f"/feed/{feed}")

    def _fixed(self, handler: BaseHTTPRequestHandler, parts: list[str]) -> None:
        name, feed = parts[1], parts[2]
        if name not in CASES:
            send(handler, 404, b"no such case", {"Content-Type": "text/plain"})
            return
        self._answer(handler, name, feed, self._next_poll(feed), f"/case/{Healthy.name}/{feed}")

    def _answer(self, handler: BaseHTTPRequestHandler, name: str, feed: str, poll: int,
                next_path: str) -> None:
        here = self.hosts.index(handler.server.server_address[0])
        ex = Exchange(handler, self, feed, poll, random.Random(f"{self.seed}:{feed}:{poll}"),
                      self.url(next_path, here + 1))
        answer = CASES[name]
        try:
            served = answer.respond(ex)
        except OSError:  # the client hung up mid-answer: it got no stories from it
            served = ex.served(answer)
        with self._answered:
            self.history[feed].append(served)
            self._answered.notify_all()

    def _hop(self, handler: BaseHTTPRequestHandler, parts: list[str]) -> None:
        name, feed, step = parts[1], parts[2], parts[3]
        if name not in CASES or not step.isdigit():
            send(handler, 404, b"no such hop", {"Content-Type": "text/plain"})
            return
        ex = Exchange(handler, self, feed, self.polls(feed), random.Random(0), "")
        CASES[name].hop(ex, int(step))

    def _leak(self, handler: BaseHTTPRequestHandler, parts: list[str]) -> None:
        with self._lock:
            self.leaks.append(handler.path)
        secret = b'<!ENTITY leaked "LEAKED-FROM-SERVER">' if parts[2] == "dtd" else b"LEAKED-FROM-SERVER"
        send(handler, 200, secret, {"Content-Type": "text/plain"})

    def _next_poll(self, feed: str) -> int:
        with self._lock:
            poll = self._polls[feed]
            if not self._frozen:
                self._polls[feed] = poll + 1
            return max(0, poll - 1) if self._frozen else poll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--serve", action="store_true", help="serve every case until Ctrl-C")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.list or not args.serve:
        for name, instance in CASES.items():
            expected = " or ".join(str(o) for o in instance.expected)
            print(f"{name:20} {expected:32} {(type(instance).__doc__ or '').splitlines()[0]}")
        return
    with HostileServer(seed=args.seed) as server:
        for name in CASES:
            print(server.case_url(name, "demo"))
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
