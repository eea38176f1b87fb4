"""Helpers for the web interface's tests: a database with matched stories, an app on it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from monitor.ingest.storing import store_poll
from monitor.models import Entry, FeedConfig, Hit, Match
from monitor.runtime.metrics import Metrics
from monitor.store.database import Store, StoreThread
from monitor.web.app import create_app
from monitor.web.auth import Guard
from monitor.web.context import WebContext

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
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


def write_alerts_config(config_dir: Path, url: str, name: str = "chat") -> None:
    config_dir.mkdir(exist_ok=True)
    (config_dir / "alerts.toml").write_text(f'[[destination]]\nname = "{name}"\nurl = "{url}"\n')


def add_dead_alert(db: Path, url: str, name: str = "chat") -> int:
    """A matched story whose alert to destination NAME died after failing; its id."""
    from monitor.alert.outbox import Planner, list_alerts, mark_failed
    from monitor.models import AlertSettings, Destination

    destination = Destination(name=name, url=url, safe_url=url)
    settings = AlertSettings(max_age=0)
    store = Store.open(db)
    try:
        store.sync_feeds([FeedConfig("alerts-news", "http://127.0.0.1/a.xml", 600.0)], NOW)
        story = Entry(feed="alerts-news", guid="dead1", url="https://news.example/dead", published=NOW,
                      title="Drone factory found", content_hash="d1")
        planner = Planner([destination], settings, "UTC", {"drones": "Drones"})
        store_poll(store, "alerts-news", [(story, "new", True, [Match(
            "drones", 4.0, "warning", (), (Hit("title", 0, 5, "drone"),), "[[Drone]] factory")])],
            NOW, {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=planner)
        alert_id = list_alerts(store)[0]["id"]
        mark_failed(store, [alert_id], NOW, "connection refused", settings)
        assert list_alerts(store, ["dead"])[0]["id"] == alert_id
        return alert_id
    finally:
        store.close()


def build_showcase_db(path: Path, now: datetime) -> None:
    """Plausible matched stories from three fictional outlets, for screenshots."""
    from datetime import timedelta

    feeds = [FeedConfig("kyiv-desk", "http://127.0.0.1/kyiv.xml", 600.0),
             FeedConfig("asia-wire", "http://127.0.0.1/asia.xml", 600.0),
             FeedConfig("ukr-news", "http://127.0.0.1/ukr.xml", 600.0)]
    stories = [
        ("kyiv-desk", "s1", "Chinese drone parts found in Shahed wreckage near Kharkiv",
         "https://kyiv-desk.example/drone-parts", "critical", "china_drones", 9.5,
         "Investigators say [[Chinese]]-made engines and [[drone]] navigation modules were in the wreckage", 50),
        ("asia-wire", "s2", "Beijing denies supplying components for Russian drones",
         "https://asia-wire.example/beijing-denies", "warning", "china_drones", 7.0,
         "[[Beijing]] said it \"never provided\" [[UAV]] components to either side in the war", 95),
        ("ukr-news", "s3", "Китай постачає Росії мікросхеми для дронів — розвідка",
         "https://ukr-news.example/chips", "critical", "china_drones", 8.0,
         "[[Китай]] постачає Росії мікросхеми для [[дронів]], заявили в розвідці", 140),
        ("kyiv-desk", "s4", "EU weighs sanctions on Chinese firms over dual-use exports",
         "https://kyiv-desk.example/eu-sanctions", "warning", "china_sanctions", 6.0,
         "The EU is weighing [[sanctions]] on [[Chinese]] firms shipping dual-use goods to Russia", 230),
        ("asia-wire", "s5", "Xi Jinping and Putin meet in Moscow, pledge deeper trade ties",
         "https://asia-wire.example/xi-putin", "info", "china_russia", 4.5,
         "[[Xi Jinping]] and Vladimir Putin pledged deeper trade ties at talks in Moscow", 310),
    ]
    copy = ("ukr-news", "s6", "Chinese drone parts found in Shahed wreckage near Kharkiv",
            "https://kyiv-desk.example/drone-parts", "critical", "china_drones", 9.5,
            "[[Chinese]]-made engines and [[drone]] modules", 55)
    store = Store.open(path)
    try:
        store.sync_feeds(feeds, now - timedelta(days=2))
        for feed, guid, title, url, severity, rule, score, snippet, minutes in [*stories, copy]:
            at = now - timedelta(minutes=minutes)
            entry = Entry(feed=feed, guid=guid, url=url, title=title, published=at, content_hash=guid,
                          language="uk" if feed == "ukr-news" else "en",
                          summary=snippet.replace("[[", "").replace("]]", ""))
            store.save_poll(feed, [(entry, "new", True, [Match(rule, score, severity, (),
                                                               (Hit("title", 0, 7, "Chinese"),), snippet)])],
                            at, {"status": "ok"}, {"outcome": "ok"}, keep=10)
    finally:
        store.close()
