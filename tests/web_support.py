"""Helpers for the web interface's tests: a database with matched stories, an app on it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from monitor.metrics import Metrics
from monitor.models import Entry, FeedConfig, Hit, Match
from monitor.store import Store, StoreThread
from monitor.web.app import create_app
from monitor.web.auth import Guard
from monitor.web.context import WebContext

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
HOSTILE = '<script>alert("x")</script> & \x0bDrones \uffff'


def build_matches_db(path: Path) -> None:
    """Two outlets: a hostile-titled story, a story with a javascript: link, and a copy
    of the first from another outlet (the same link)."""
    store = Store.open(path)
    try:
        store.sync_feeds([FeedConfig("kyiv-news", "http://127.0.0.1/k.xml", 600.0),
                          FeedConfig("other-news", "http://127.0.0.1/o.xml", 600.0)], NOW)
        hostile = Entry(feed="kyiv-news", guid="g1", url="https://news.example/a?b=1&c=2",
                        title=HOSTILE, published=NOW, content_hash="1", language="en")
        sneaky = Entry(feed="kyiv-news", guid="g2", url="javascript:alert(1)",
                       title="Energy grid attacked", content_hash="2", language="uk")
        copy = Entry(feed="other-news", guid="o1", url="https://news.example/a?b=1&c=2",
                     title="Drones over the city", published=NOW, content_hash="3", language="en")
        drones = Match("drones", 4.5, "critical", ("war",),
                       (Hit("title", 0, 6, "drone"), Hit("summary", 3, 9, "UAV")),
                       "swarm of [[drones]] <img src=x> and [[UAVs]]")
        energy = Match("energy", 2.0, "info", (), (Hit("title", 0, 6, "energy"),), "[[Energy]] grid")
        store.save_poll("kyiv-news", [(hostile, "new", True, [drones])], NOW,
                        {"status": "ok"}, {"outcome": "ok"}, keep=10)
        store.save_poll("kyiv-news", [(sneaky, "new", True, [energy])],
                        NOW.replace(hour=11), {"status": "ok"}, {"outcome": "ok"}, keep=10)
        store.save_poll("other-news", [(copy, "new", True, [drones])],
                        NOW.replace(hour=9), {"status": "ok"}, {"outcome": "ok"}, keep=10)
    finally:
        store.close()


@dataclass
class Site:
    """The app on a real database, and a client that keeps the session cookie."""

    context: WebContext
    client: httpx.AsyncClient

    async def csrf(self, path: str = "/today") -> str:
        page = await self.client.get(path)
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def make_context(tmp_path: Path, *, password_hash: str | None = None, clock=lambda: NOW,
                 healthy=lambda: True) -> WebContext:
    db = tmp_path / "monitor.db"
    if not db.exists():
        build_matches_db(db)
    config_dir = tmp_path / "cfg"
    config_dir.mkdir(exist_ok=True)
    return WebContext(store=StoreThread(db), config_dir=config_dir, db_path=db,
                      guard=Guard(password_hash), metrics=Metrics(), clock=clock, healthy=healthy)


def client_for(context: WebContext, base_url: str = "http://127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(context)),
                             base_url=base_url, follow_redirects=False)
