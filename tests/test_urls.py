"""monitor.urls: the helpers every stage uses for URLs (canonical form and userinfo are in test_parse.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from monitor.urls import DEFAULT_PORTS, port_or_default


@pytest.mark.parametrize(("url", "port"), [
    ("http://example.org/feed", 80),
    ("HTTPS://example.org/feed", 443),
    ("https://example.org:8443/feed", 8443),
    ("http://[::1]:8080/", 8080),
    ("ftp://example.org/file", None),
    ("socks5://proxy.example", None),
])
def test_port_or_default_fills_in_the_schemes_port(url: str, port: int | None) -> None:
    assert port_or_default(urlsplit(url)) == port


def test_port_or_default_refuses_a_port_out_of_range() -> None:
    with pytest.raises(ValueError):
        port_or_default(urlsplit("https://example.org:70000/"))


def test_the_default_ports_are_the_web_schemes() -> None:
    assert DEFAULT_PORTS == {"http": 80, "https": 443}
