"""The daemon's optional HTTP endpoint (`monitor run --http 127.0.0.1:PORT`).

Three read-only routes: `/healthz` (200 only while the daemon's heartbeat is
healthy, for a load balancer or an uptime check), `/metrics` (Prometheus text)
and `/matches.atom` (the matched stories as an Atom feed, so a person can
follow them in any feed reader). It is a deliberately tiny HTTP/1.1 server on
asyncio streams, not a web framework: GET only, one request per connection,
a bounded request head and a read timeout, so a slow or hostile client can
neither hold a connection open nor make the daemon buffer much.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from monitor.alert.render import render_alert
from monitor.errors import UsageError
from monitor.metrics import Metrics
from monitor.models import AlertView, RuleHit
from monitor.store import Store, StoreThread, from_text, to_text

log = logging.getLogger("monitor.http")

LOOPBACK = "127.0.0.1"
MAX_LINE = 8 * 1024  # one request or header line
MAX_HEAD = 16 * 1024  # request line and headers together
READ_TIMEOUT = 5.0  # seconds for the whole request head
WRITE_TIMEOUT = 5.0
ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --------------------------------------------------------------------------
# the listen address
# --------------------------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT for --http: "127.0.0.1:8080", "[::1]:8080", or ":8080" for loopback.

    Only loopback is used unless the user names another host, since /metrics
    and the matches feed are nobody else's business by default.
    """
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise _listen_error(text, "expected HOST:PORT such as 127.0.0.1:8080 or :8080")
    if host.startswith("[") and host.endswith("]"):
        host = _ipv6(text, host[1:-1])
    elif ":" in host:
        raise _listen_error(text, "write an IPv6 address in brackets, like [::1]:8080")
    elif not host:
        host = LOOPBACK
    elif not _is_host(host):
        raise _listen_error(text, f"{host!r} is not an IP address or host name")
    return host, _port(text, port_text)


def _ipv6(text: str, host: str) -> str:
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        raise _listen_error(text, f"{host!r} is not an IPv6 address") from None


def _is_host(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host)) and not host.replace(".", "").isdigit()


def _port(text: str, port_text: str) -> int:
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise _listen_error(text, f"the port must be a number from 0 to 65535, not {port_text!r}")
    return int(port_text)


def _listen_error(text: str, why: str) -> UsageError:
    return UsageError(f"listen address {text!r}: {why}")


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    content_type: str = TEXT_TYPE
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _Rejected(Exception):
    """A request the server answers with an error status without routing it."""

    def __init__(self, status: int, **headers: str) -> None:
        super().__init__(status)
        self.response = Response(status, body=f"{HTTPStatus(status).phrase}\n".encode(),
                                 headers=headers)


class HealthServer:
    """Serves /healthz, /metrics and /matches.atom until stopped."""

    def __init__(self, host: str, port: int, *, healthy: Callable[[], bool], metrics: Metrics,
                 atom: Callable[[], Awaitable[bytes]]) -> None:
        self.host = host
        self._requested_port = port
        self._healthy = healthy
        self._metrics = metrics
        self._atom = atom
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The port actually bound (the kernel's choice when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._requested_port,
                                                  limit=MAX_LINE)
        log.info("http listening on %s port %d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop connections still open (each is at most seconds long)."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            response = await self._answer(reader)
            if response is not None:
                await asyncio.wait_for(_send(writer, response), WRITE_TIMEOUT)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading: nothing left to tell it
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> Response | None:
        """The response to the request on READER; None when the client sent nothing."""
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                path = await _read_request(reader)
        except _Rejected as rejected:
            return rejected.response
        except TimeoutError:
            return _Rejected(HTTPStatus.REQUEST_TIMEOUT).response
        except asyncio.IncompleteReadError:
            return None
        try:
            return await self._route(path)
        except Exception:
            log.exception("http error serving %s", path)
            return _Rejected(HTTPStatus.INTERNAL_SERVER_ERROR).response

    async def _route(self, path: str) -> Response:
        if path == "/healthz":
            if self._healthy():
                return Response(HTTPStatus.OK, body=b"ok\n")
            return Response(HTTPStatus.SERVICE_UNAVAILABLE, body=b"unhealthy\n")
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            return Response(HTTPStatus.OK, CONTENT_TYPE_LATEST, self._metrics.exposition())
        if path == "/matches.atom":
            return Response(HTTPStatus.OK, ATOM_TYPE, await self._atom())
        return _Rejected(HTTPStatus.NOT_FOUND).response


async def _read_request(reader: asyncio.StreamReader) -> str:
    """The path of a well-formed GET; the headers are read (bounded) and ignored."""
    request_line = await _read_line(reader, HTTPStatus.REQUEST_URI_TOO_LONG)
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise _Rejected(HTTPStatus.BAD_REQUEST)
    head_size = len(request_line)
    while True:
        line = await _read_line(reader, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        head_size += len(line)
        if head_size > MAX_HEAD:
            raise _Rejected(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        if line in (b"\r\n", b"\n"):
            break
    method, target = parts[0], parts[1]
    if method != "GET":
        raise _Rejected(HTTPStatus.METHOD_NOT_ALLOWED, Allow="GET")
    return urlsplit(target).path


async def _read_line(reader: asyncio.StreamReader, too_long: int) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise _Rejected(too_long) from None


async def _send(writer: asyncio.StreamWriter, response: Response) -> None:
    status = HTTPStatus(response.status)
    headers = {"Content-Type": response.content_type, "Content-Length": str(len(response.body)),
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Connection": "close", **response.headers}
    head = f"HTTP/1.1 {status.value} {status.phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + response.body)
    await writer.drain()


# --------------------------------------------------------------------------
# the matches feed
# --------------------------------------------------------------------------


async def matches_atom(store: StoreThread, *, title: str, limit: int = 100) -> bytes:
    """An Atom 1.0 feed of the latest matched stories, one entry per story with every rule
    it matched and why."""
    rows = await store.call(latest_matches, limit)
    return build_atom(rows, title=title, now=datetime.now(timezone.utc))


def latest_matches(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest matched stories with their outlet and matches (runs on the store's thread):
    `matches` is a JSON array of {rule, score, severity, hits, snippet}."""
    return list(store.db.query(
        "SELECT m.entry_id, MAX(m.created) AS created, e.feed_id, e.guid, e.title, e.url, "
        "e.published, f.name AS feed, json_group_array(json_object('rule', m.rule, "
        "'score', m.score, 'severity', m.severity, 'hits', json(m.hits), 'snippet', m.snippet)) "
        "AS matches FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id GROUP BY m.entry_id "
        "ORDER BY MAX(m.created) DESC, m.entry_id DESC LIMIT ?", [limit]))


def build_atom(rows: list[dict[str, Any]], *, title: str, now: datetime) -> bytes:
    """The feed document: every value is feed text, so it is cleaned and escaped."""
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _child(feed, "id", _urn("matches", title))
    _child(feed, "title", _xml_text(title))
    _child(feed, "updated", rows[0]["created"] if rows else to_text(now))
    _child(ET.SubElement(feed, "author"), "name", "monitor")
    _child(feed, "generator", "monitor")
    for row in rows:
        _entry(feed, row)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _entry(feed: ET.Element, row: dict[str, Any]) -> None:
    view = _view(row)
    entry = ET.SubElement(feed, "entry")
    _child(entry, "id", _urn("story", row["feed_id"], row["guid"]))
    more = len(view.rules) - 1
    _child(entry, "title", _xml_text(f"[{view.rule}{f' +{more}' if more else ''}] {row['title']}"))
    _child(entry, "updated", row["created"])
    if row["published"]:
        _child(entry, "published", row["published"])
    url = row["url"] or ""
    if urlsplit(url).scheme.lower() in ("http", "https"):
        ET.SubElement(entry, "link", rel="alternate", href=_NOT_XML.sub("", url))
    for hit in view.rules:
        ET.SubElement(entry, "category", term=_xml_text(hit.rule))
    _child(entry, "content", _NOT_XML.sub("", render_alert(view, "UTC").html), type="html")


def _view(row: dict[str, Any]) -> AlertView:
    hits = sorted((RuleHit(rule=m["rule"], severity=m["severity"], score=m["score"],
                           snippet=m["snippet"],
                           terms=tuple(dict.fromkeys(hit["term"] for hit in m["hits"])))
                   for m in json.loads(row["matches"])), key=RuleHit.order)
    top = hits[0]
    return AlertView(rule=top.rule, severity=top.severity, score=top.score,
                     title=row["title"], url=row["url"], feed=row["feed"],
                     published=from_text(row["published"]), snippet=top.snippet, terms=top.terms,
                     rules=tuple(hits))


def _child(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _urn(*parts: object) -> str:
    """A stable id: the same story keeps its own across restarts and feed renames."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "monitor:" + "\n".join(map(str, parts))))


def _xml_text(value: str) -> str:
    """One line of text XML can carry (ElementTree escapes it; it cannot drop what XML forbids)."""
    return " ".join(_NOT_XML.sub("", value).split())
