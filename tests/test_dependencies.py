"""The dependencies' behaviour that monitor relies on, checked against what is installed.

A fresh install takes the newest versions that pyproject.toml's bounds admit.
When one of them changes something the code depends on, these tests fail with
the dependency's name in the test's name, before the feature that uses it
breaks in a stranger place. Each test uses only the public API the code uses.
"""

from __future__ import annotations

import asyncio
import io
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from support.hostile_routes import closed_port

ROOT = Path(__file__).resolve().parent.parent


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("requirement", _requirements(), ids=lambda r: r.name)
def test_each_dependency_is_bounded_and_installed_within_its_bounds(requirement: Requirement):
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), (
        f"{requirement.name} has no upper bound: bound it to the versions the suite is run against")
    installed = metadata.version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement.name} {installed} is outside {requirement.specifier}")


def test_tomlkit_layout_api_used_by_the_watch_editor():
    import tomlkit
    import tomlkit.items

    document = tomlkit.parse('[entity]\nrussia.aliases = ["Russia"]\n\n[rule.r]\nquery = "q"  # note\n')
    dotted = document["entity"]["russia"]
    assert isinstance(dotted, tomlkit.items.Table) and dotted.is_super_table()
    rule = document["rule"]["r"]
    assert not rule.is_super_table()
    anchor = rule.value.item("query")
    anchor.trivia.trail = anchor.trivia.trail + "enabled = false\n"
    assert tomlkit.dumps(document).endswith('query = "q"  # note\nenabled = false\n')

    array = tomlkit.parse('a = [\n  "x",\n]\n')["a"]
    array.add_line("y", indent="\n  ", newline=False, add_comma=True)
    assert array.as_string() == '[\n  "x",\n  "y",\n]'


def test_feedparser_leaves_html_alone_when_asked():
    import feedparser

    body = (b'<rss version="2.0"><channel><title>t</title><item><title>A</title>'
            b'<link>/rel</link><description>&lt;script&gt;x&lt;/script&gt;&lt;a href="/r"&gt;l&lt;/a&gt;'
            b'</description></item></channel></rss>')
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": "http://127.0.0.1/"},
                              sanitize_html=False, resolve_relative_uris=False)
    summary = parsed["entries"][0]["summary"]
    assert "<script>" in summary and 'href="/r"' in summary


def test_pymorphy3_reads_ukrainian_and_russian_word_forms():
    import pymorphy3

    assert pymorphy3.MorphAnalyzer(lang="uk").parse("Китаю")[0].normal_form == "китай"
    assert pymorphy3.MorphAnalyzer(lang="ru").parse("Китая")[0].normal_form == "китай"


def test_apprise_api_used_for_destinations_and_results():
    import apprise

    url = f"json://127.0.0.1:{closed_port()}/hook"
    service = apprise.Apprise.instantiate(url)
    assert service is not None and "json" in apprise.NotificationManager().schemas()
    assert service.url(privacy=True).startswith("json://")
    assert isinstance(service.notify_format, (str, tuple, list))

    notifier = apprise.Apprise()
    assert notifier.add(url) is True
    result = asyncio.run(notifier.async_notify(body="b", title="t", body_format=apprise.NotifyFormat.TEXT,
                                               timeout=5))
    assert result.status != apprise.AppriseResultStatus.SUCCESS
    assert isinstance(result.timeout_count, int)
    assert all(hasattr(entry, "level") and hasattr(entry, "message") for entry in result.logs())


def test_apprise_config_lists_its_services(tmp_path):
    import apprise

    path = tmp_path / "apprise.yml"
    path.write_text("urls:\n  - json://127.0.0.1:9/x:\n      tag: desk\n", encoding="utf-8")
    loader = apprise.AppriseConfig()
    loader.add(str(path))
    services = loader.services()
    assert [sorted(str(tag) for tag in service.tags) for service in services] == [["desk"]]


def test_httpx_transport_takes_limits_and_a_proxy():
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=10)
    direct = httpx.AsyncHTTPTransport(limits=limits)
    proxied = httpx.AsyncHTTPTransport(limits=limits, proxy="http://127.0.0.1:3128")
    asyncio.run(direct.aclose())
    asyncio.run(proxied.aclose())


def test_sniffio_is_importable_so_httpcore_does_not_retry_it_per_request():
    import sniffio  # noqa: F401

    assert "sniffio" in sys.modules


def test_sqlite_utils_migrations_api(tmp_path):
    from sqlite_utils import Database, Migrations

    migrations = Migrations("dependency-check")

    @migrations(name="0001_t")
    def create(db: Database) -> None:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")

    db = Database(tmp_path / "x.db")
    migrations.apply(db)
    migrations.apply(db)
    assert db["t"].exists()
