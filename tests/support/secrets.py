"""Hunting for leaked secrets: distinctive values, where they may hide, and who listens where.

Each secret is a label plus random hex, so a hit names the secret that leaked
and cannot be a coincidence. A secret is looked for as written and in the
percent-encoded and base64 forms a URL or an HTTP header would give it.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets as random_tokens
import socket
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
TCP_LISTEN = "0A"  # the socket state column of /proc/net/tcp


@dataclass
class SecretSet:
    """Named secret values, and every form in which one of them counts as leaked.

    A secret is a distinctive core (label and random hex) plus an optional
    suffix of characters a URL must escape. Only the core is hunted: it
    survives every encoding of the suffix, so any of them is caught.
    """

    cores: dict[str, str] = field(default_factory=dict)
    extra_forms: dict[str, set[str]] = field(default_factory=dict)

    def new(self, label: str, suffix: str = "") -> str:
        core = f"{label}{random_tokens.token_hex(10)}"
        self.cores[label] = core
        return core + suffix

    def also(self, label: str, form: str) -> None:
        """Count FORM (e.g. the base64 of a header) as a leak of LABEL too."""
        self.extra_forms.setdefault(label, set()).add(form)

    def forms(self) -> Iterator[tuple[str, str]]:
        for label, core in self.cores.items():
            for form in {core, base64.b64encode(core.encode()).decode().rstrip("=")} | \
                    self.extra_forms.get(label, set()):
                yield label, form

    def found_in(self, text: str) -> list[str]:
        """Labels of the secrets TEXT holds in any form."""
        return sorted({label for label, form in self.forms() if form in text})

    def found_in_bytes(self, data: bytes) -> list[str]:
        return sorted({label for label, form in self.forms() if form.encode() in data})


def isolated_env(root: Path) -> dict[str, str]:
    """The isolation of test_cli's `env` fixture (HOME, config and db under ROOT), for wider scopes."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MONITOR_", "XDG_", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY",
                                 "CREDENTIALS_DIRECTORY"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    base.update(HOME=str(home), MONITOR_CONFIG=str(root / "cfg"),
                MONITOR_DB=str(root / "state" / "monitor.db"),
                PYTHONPATH=str(Path(__file__).resolve().parents[2]), NO_PROXY="127.0.0.1,localhost")
    return base


def database_cells(db: Path) -> Iterator[tuple[str, str, object]]:
    """(table, column, value) for every cell of every table, FTS shadow tables included."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            try:
                cursor = conn.execute(f'SELECT * FROM "{table}"')
            except sqlite3.OperationalError:  # a virtual table whose module this sqlite lacks
                continue
            columns = [description[0] for description in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=False):
                    yield table, column, value


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on PORT, read from /proc/net/tcp and tcp6."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] == TCP_LISTEN and int(port_hex, 16) == port:
                found.add(_proc_address(address, width))
    return found


def _proc_address(hex_address: str, width: int) -> str:
    """/proc/net/tcp writes addresses as host-order 32-bit words in hex."""
    raw = b"".join(struct.pack("<I", int(hex_address[i:i + 8], 16)) for i in range(0, width, 8))
    return socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw)


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine outside 127/8, if it has one (asked of the kernel, no traffic)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            address = socket.inet_ntoa(reply[20:24])
            if not address.startswith("127."):
                return address
    return None


def file_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
