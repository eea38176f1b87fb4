"""The web interface against what the other branches added beside it: the hardening's
masking and per-feed fields, and the outbox's one alert per story and destination."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.lock import DaemonLock
from monitor.store import Store

from web_support import NOW, Site, client_for, make_context

FEEDS_TOML = """[[feed]]
name = "kyiv-news"
url = "http://127.0.0.1:9/k.xml?apikey=FEEDKEY123&lang=en"

[[feed]]
name = "other-news"
url = "http://u:secretpw@127.0.0.1:9/o.xml?token=TOKEN456"
"""


def run(test, tmp_path: Path) -> None:
    context = make_context(tmp_path)

    async def main() -> None:
        async with client_for(context) as client:
            await test(Site(context, client))

    try:
        asyncio.run(main())
    finally:
        context.store.close()


def _feeds_site(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir(exist_ok=True)
    (tmp_path / "cfg" / "feeds.toml").write_text(FEEDS_TOML)


# --------------------------------------------------------------------------
# Feeds: secrets masked, the hardening's per-feed fields shown
# --------------------------------------------------------------------------


def test_feeds_page_masks_query_secrets_in_urls_and_errors(tmp_path) -> None:
    _feeds_site(tmp_path)
    with (tmp_path / "cfg" / "feeds.toml").open("a") as feeds:  # not polled yet: its URL as configured
        feeds.write('\n[[feed]]\nname = "new-news"\nurl = "http://127.0.0.1:9/n.xml?api_key=NEWKEY789&x=1"\n')
    make_context(tmp_path).store.close()  # the database with its stories
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.save_poll("other-news", [], NOW, {
            "status": "error", "consecutive_errors": 2,
            "last_error": "HTTP 500 from http://127.0.0.1:9/o.xml?token=TOKEN456"}, {"outcome": "error"}, keep=10)
    finally:
        store.close()

    async def test(site: Site) -> None:
        page = (await site.client.get("/feeds")).text
        for secret in ("FEEDKEY123", "TOKEN456", "secretpw", "NEWKEY789"):
            assert secret not in page
        assert "n.xml?api_key=***&amp;x=1" in page  # the URL
        assert "o.xml?token=***" in page  # the last error

    run(test, tmp_path)


def test_feeds_page_shows_a_held_move_unmatched_stories_and_a_storage_failure(tmp_path) -> None:
    _feeds_site(tmp_path)
    make_context(tmp_path).store.close()
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.save_poll("kyiv-news", [], NOW, {
            "status": "ok", "moved_to": "http://127.0.0.1:9/new.xml?apikey=***",
            "match_warning": "3 stories stored without matching (over the matching budget)"},
            {"outcome": "ok"}, keep=10)
    finally:
        store.close()
    daemon = DaemonLock(tmp_path / "monitor.db")  # as the running daemon holds it
    daemon.acquire()
    daemon.note_problem(None, {"other-news": "database or disk is full"})

    async def test(site: Site) -> None:
        page = (await site.client.get("/feeds")).text
        kyiv = page[page.index('id="feed-kyiv-news"'):page.index('id="feed-other-news"')]
        assert "Moved permanently to" in kyiv and "new.xml?apikey=***" in kyiv
        assert "3 stories stored without matching" in kyiv
        other = page[page.index('id="feed-other-news"'):]
        assert "Polls not stored: database or disk is full" in other[:other.index("</tr>")]

    try:
        run(test, tmp_path)
    finally:
        daemon.release()


def test_opml_export_masks_secrets_unless_asked_to_keep_them(tmp_path) -> None:
    _feeds_site(tmp_path)

    async def test(site: Site) -> None:
        masked = (await site.client.get("/feeds.opml")).content
        assert b"apikey=***&amp;lang=en" in masked and b"token=***" in masked
        for secret in (b"FEEDKEY123", b"TOKEN456", b"secretpw"):
            assert secret not in masked
        kept = (await site.client.get("/feeds.opml?with_secrets=1")).content
        assert b"apikey=FEEDKEY123" in kept and b"u:secretpw@" in kept and b"TOKEN456" in kept
        page = (await site.client.get("/feeds")).text
        assert 'href="/feeds.opml?with_secrets=1"' in page

    run(test, tmp_path)
