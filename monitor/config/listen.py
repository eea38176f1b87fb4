"""Where the web interface listens: parsing `HOST:PORT` and binding the socket.

Parsing and binding live here, apart from the web stack, so that `monitor run
--http` and `[http] listen` are checked before anything heavy is imported and a
port in use is one clear error line, not a traceback from deep in a server.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket

from monitor.errors import UsageError

LOOPBACK = "127.0.0.1"
# Connections the kernel queues before the server accepts them. asyncio also
# accepts up to this many in one go before any of them can be shed and closed,
# so it bounds the descriptors a burst of connections takes at once: kept small
# so that a flood stays well inside a 256-descriptor limit (the shed ones are
# closed within a loop turn, the waiting ones are retried by the client's kernel).
BACKLOG = 32
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT for --http: "127.0.0.1:8080", "[::1]:8080", or ":8080" for loopback.

    Only loopback is used unless the user names another host, since the pages,
    /metrics and the matches feed are nobody else's business by default.
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


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost": only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def show_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening socket on HOST:PORT; UsageError (exit 2) with one line when it cannot be had."""
    where = show_address(host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {where}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = ("address already in use" if exc.errno == errno.EADDRINUSE
                  else (exc.strerror or str(exc)).lower())
        raise UsageError(f"cannot listen on {where}: {reason}") from None
    return sock


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
