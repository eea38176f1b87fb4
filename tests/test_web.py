"""The web interface's routes and forms: httpx against the ASGI app on a real SQLite
database, and the real server (uvicorn) on a loopback port for what only a socket shows."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.listen import LOOPBACK, bind, parse_listen
from monitor.errors import UsageError
from monitor.runtime.metrics import Metrics
from monitor.web.auth import Guard, hash_password
from web_support import NOW, Site, client_for, make_context

ATOM = "{http://www.w3.org/2005/Atom}"


def run(test, tmp_path: Path, **options) -> None:
    """Run TEST(site) against the app on a fresh database."""
    base_url = options.pop("base_url", "http://127.0.0.1")
    context = make_context(tmp_path, **options)

    async def main() -> None:
        async with client_for(context, base_url) as client:
            await test(Site(context, client))

    try:
        asyncio.run(main())
    finally:
        context.store.close()


# --------------------------------------------------------------------------
# the listen address
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)), (":9108", (LOOPBACK, 9108)),
    ("[::1]:80", ("::1", 80)), ("localhost:0", ("localhost", 0)), (" 10.0.0.5:8080 ", ("10.0.0.5", 8080)),
])
def test_parse_listen_accepts_host_port_and_defaults_to_loopback(text, expected) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text, why", [
    ("9108", "expected HOST:PORT"), ("127.0.0.1:http", "port must be a number"),
    ("127.0.0.1:70000", "port must be a number"), ("::1:80", "IPv6 address in brackets"),
    ("[zz]:80", "not an IPv6 address"), ("bad host:80", "not an IP address or host name"),
])
def test_parse_listen_rejects_bad_text_with_a_usage_error(text, why) -> None:
    with pytest.raises(UsageError, match=why) as caught:
        parse_listen(text)
    assert repr(text) in str(caught.value)


def test_a_port_in_use_is_one_usage_error() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"^cannot listen on 127.0.0.1:{port}: address already in use$"):
            bind("127.0.0.1", port)
    finally:
        taken.close()


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_what_the_daemon_observes() -> None:
    metrics = Metrics()
    metrics.observe_poll("ok", None, 0.3, new=4, updated=1)
    metrics.observe_poll("error", "timeout", 12.0, new=0, updated=0)
    metrics.observe_poll("error", "timeout", 0.01, new=0, updated=0)
    metrics.observe_matches(["drones", "drones", "energy"])
    metrics.observe_alerts(sent=3, failed=1, dead=0)
    metrics.set_loop_lag(0.25)
    metrics.set_alerts_pending(7)
    metrics.set_feed_statuses({"ok": 5, "error": 2})
    metrics.set_feed_statuses({"ok": 6, "paused": 1})  # the erroring feeds recovered
    found = samples(metrics)

    assert found[("monitor_polls_total", (("outcome", "ok"),))] == 1
    assert found[("monitor_polls_total", (("outcome", "error"),))] == 2
    assert found[("monitor_fetch_errors_total", (("kind", "timeout"),))] == 2
    assert found[("monitor_entries_total", (("kind", "new"),))] == 4
    assert found[("monitor_matches_total", (("rule", "drones"),))] == 2
    assert found[("monitor_alerts_total", (("result", "dead"),))] == 0
    assert found[("monitor_fetch_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert found[("monitor_loop_lag_seconds", ())] == 0.25
    assert found[("monitor_alerts_pending", ())] == 7
    assert found[("monitor_feeds", (("status", "ok"),))] == 6
    assert found[("monitor_feeds", (("status", "error"),))] == 0


def test_metrics_include_the_standard_process_metrics() -> None:
    found = {name for name, _ in samples(Metrics())}
    assert {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total",
            "process_start_time_seconds"} <= found


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.observe_alerts(sent=1, failed=0, dead=0)
    assert samples(first)[("monitor_alerts_total", (("result", "sent"),))] == 1
    assert samples(second)[("monitor_alerts_total", (("result", "sent"),))] == 0


def test_the_cli_does_not_import_the_web_stack_or_prometheus() -> None:
    code = ("import sys, monitor.cli, monitor.runtime.metrics, monitor.config.load, monitor.config.listen, "
            "monitor.cli.run, monitor.cli.web; "
            "heavy = {'prometheus_client', 'starlette', 'uvicorn', 'jinja2', 'multipart'}; "
            "sys.exit(sorted(heavy & set(sys.modules)) or 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------
# /healthz, /metrics, /matches.atom
# --------------------------------------------------------------------------


def test_healthz_follows_the_health_check(tmp_path) -> None:
    state = {"healthy": True}

    async def test(site: Site) -> None:
        ok = await site.client.get("/healthz")
        assert (ok.status_code, ok.text) == (200, "ok\n")
        state["healthy"] = False
        down = await site.client.get("/healthz")
        assert (down.status_code, down.text) == (503, "unhealthy\n")

    run(test, tmp_path, healthy=lambda: state["healthy"])


def test_metrics_route_serves_prometheus_text(tmp_path) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    async def test(site: Site) -> None:
        site.context.metrics.observe_poll("not_modified", None, 0.2, new=0, updated=0)
        response = await site.client.get("/metrics")
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        assert 'monitor_polls_total{outcome="not_modified"} 1.0' in response.text
        assert "process_resident_memory_bytes" in response.text

    run(test, tmp_path)


def test_matches_atom_is_a_valid_feed_of_explained_matches(tmp_path) -> None:
    async def test(site: Site) -> None:
        response = await site.client.get("/matches.atom")
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        feed = ET.fromstring(response.content)
        entries = feed.findall(f"{ATOM}entry")
        assert len(entries) == 3
        titles = [e.find(f"{ATOM}title").text for e in entries]
        assert titles[0] == "[energy] Energy grid attacked"
        assert "<script>" in titles[1] and "\uffff" not in titles[1]  # escaped text, not markup
        sneaky = entries[0]
        assert sneaky.find(f"{ATOM}link") is None  # a javascript: link is never offered

    run(test, tmp_path)


# --------------------------------------------------------------------------
# security basics
# --------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(tmp_path) -> None:
    async def test(site: Site) -> None:
        for path in ("/today", "/healthz", "/nope", "/static/app.js"):
            response = await site.client.get(path)
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"

    run(test, tmp_path)


def test_pages_have_no_inline_script_and_escape_feed_text(tmp_path) -> None:
    async def test(site: Site) -> None:
        for path in ("/today?period=all", "/story/1"):
            page = (await site.client.get(path)).text
            assert "<script>alert" not in page and "&lt;script&gt;alert" in page
            assert "<img src=x>" not in page
            assert all(tag.startswith('<script src="/static/') for tag in page.split("<script")[1:]
                       for tag in ["<script" + tag])

    run(test, tmp_path)


def test_unknown_page_and_crash_are_pages_not_tracebacks(tmp_path) -> None:
    async def test(site: Site) -> None:
        missing = await site.client.get("/story/999")
        assert missing.status_code == 404 and "<h1>Error 404</h1>" in missing.text
        site.context.store.close()  # the database goes away under the pages
        broken = await site.client.get("/today")
        assert broken.status_code == 500 and "Traceback" not in broken.text
        assert "Error 500" in broken.text

    run(test, tmp_path)


def test_a_post_without_the_csrf_token_is_refused_on_every_route(tmp_path) -> None:
    from monitor.web.app import create_app

    async def test(site: Site) -> None:
        app = create_app(site.context)
        while hasattr(app, "app"):
            app = app.app
        posts = [route.path.replace("{story_id:int}", "1").replace("{name}", "kyiv-news")
                 .replace("{action:str}", "pause").replace("/watch/rule/{name}", "/watch/rule/drones")
                 .replace("/watch/entity/{name}", "/watch/entity/drones")
                 for route in app.routes
                 if "POST" in (getattr(route, "methods", None) or ())]
        assert "/story/{story_id:int}/false-positive" not in posts and len(posts) >= 4
        for path in posts:
            refused = await site.client.post(path, data={"next": "/today"})
            assert refused.status_code == 403, path
            forged = await site.client.post(path, data={"csrf": "forged"})
            assert forged.status_code == 403, path
        # nothing was marked
        page = await site.client.get("/today?period=all")
        assert page.text.count('class="story"') == 2

    run(test, tmp_path)


def test_oversized_body_and_bad_paths_are_refused(tmp_path) -> None:
    async def test(site: Site) -> None:
        token = await site.csrf()
        big = await site.client.post("/story/1/relevant", data={"csrf": token, "x": "a" * 3_000_000})
        assert big.status_code == 413

    run(test, tmp_path)


# --------------------------------------------------------------------------
# login
# --------------------------------------------------------------------------


def test_with_a_password_every_page_asks_for_a_login(tmp_path) -> None:
    async def test(site: Site) -> None:
        client = site.client
        away = await client.get("/today?period=all")
        assert away.status_code == 303 and away.headers["location"] == "/login?next=/today"
        assert (await client.get("/healthz")).status_code == 200  # for uptime checks
        login = await client.get("/login")
        token = await site.csrf("/login")
        wrong = await client.post("/login", data={"csrf": token, "password": "nope", "next": "/today"})
        assert wrong.status_code == 403 and "Wrong password" in wrong.text
        right = await client.post("/login", data={"csrf": token, "password": "correct horse",
                                                  "next": "/story/1"})
        assert right.status_code == 303 and right.headers["location"] == "/story/1"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert login.status_code == 200
        assert (await client.get("/today")).status_code == 200
        token = await site.csrf()
        out = await client.post("/logout", data={"csrf": token})
        assert out.status_code == 303
        assert (await client.get("/today")).status_code == 303

    run(test, tmp_path, password_hash=hash_password("correct horse"))


def test_the_session_cookie_is_secure_behind_tls(tmp_path) -> None:
    async def test(site: Site) -> None:
        token = await site.csrf("/login")
        right = await site.client.post("/login", data={"csrf": token, "password": "correct horse"})
        assert "; Secure" in right.headers["set-cookie"]

    run(test, tmp_path, password_hash=hash_password("correct horse"), base_url="https://monitor.test")


def test_a_forged_or_expired_cookie_is_no_session() -> None:
    guard = Guard(hash_password("correct horse"))
    session = guard.new_session(logged_in=True, now=1000)
    value = guard.cookie_value(session)
    assert guard.read_cookie(value, now=1001) == session
    assert guard.read_cookie(value.replace(".1.", ".0."), now=1001) is None
    assert guard.read_cookie(value, now=1000 + 8 * 24 * 3600) is None
    other = Guard(hash_password("correct horse"))  # a new password (even the same) logs out
    assert other.read_cookie(value, now=1001) is None


# --------------------------------------------------------------------------
# Today and Story
# --------------------------------------------------------------------------


def test_today_groups_one_story_across_outlets_newest_first(tmp_path) -> None:
    async def test(site: Site) -> None:
        page = (await site.client.get("/today?period=all")).text
        assert page.count('class="story"') == 2
        assert page.index("Energy grid attacked") < page.index("&lt;script&gt;")
        assert 'also <a href="/story/3">other-news</a>' in page
        assert "<mark>drones</mark>" in page

    run(test, tmp_path)


@pytest.mark.parametrize("query, shown", [
    ("rule=energy", ["Energy grid"]), ("feed=other-news", ["Drones over"]),
    ("language=uk", ["Energy grid"]), ("severity=critical", ["&lt;script&gt;"]),
    ("period=today", ["Energy grid", "&lt;script&gt;"]), ("period=1d", ["Energy grid", "&lt;script&gt;"]),
])
def test_today_filters(tmp_path, query, shown) -> None:
    async def test(site: Site) -> None:
        page = (await site.client.get(f"/today?period=all&{query}")).text
        assert page.count('class="story"') == len(shown), page
        for text in shown:
            assert text in page

    run(test, tmp_path, clock=lambda: NOW.replace(hour=12))


def test_false_positive_is_the_record_mute_writes_and_leaves_the_list(tmp_path) -> None:
    from monitor.read.search import muted_matches
    from monitor.store.database import Store

    async def test(site: Site) -> None:
        token = await site.csrf("/today?period=all")
        done = await site.client.post("/story/1/false-positive",
                                      data={"csrf": token, "copy": "3", "next": "/today?period=all",
                                            "reason": "not about drones"})
        assert done.status_code == 303 and done.headers["location"].startswith("/today?period=all&done=")
        page = (await site.client.get(done.headers["location"])).text
        assert page.count('class="story"') == 1 and "Marked a false positive" in page
        false = (await site.client.get("/today?period=all&state=false_positive")).text
        assert "&lt;script&gt;" in false

    run(test, tmp_path)
    store = Store.open(tmp_path / "monitor.db")
    try:
        muted = muted_matches(store)
    finally:
        store.close()
    assert sorted(m["id"] for m in muted) == [1, 3]
    assert {m["mute_reason"] for m in muted} == {"not about drones"}


def test_mark_relevant_leaves_the_triage_list_and_undoes_a_false_positive(tmp_path) -> None:
    async def test(site: Site) -> None:
        token = await site.csrf("/today?period=all")
        await site.client.post("/story/2/false-positive", data={"csrf": token})
        await site.client.post("/story/2/relevant", data={"csrf": token})
        open_page = (await site.client.get("/today?period=all")).text
        assert "Energy grid" not in open_page
        relevant = (await site.client.get("/today?period=all&state=relevant")).text
        assert "Energy grid" in relevant
        assert "Energy grid" not in (await site.client.get("/today?period=all&state=false_positive")).text
        bad = await site.client.post("/story/99/relevant", data={"csrf": token})
        assert "problem=" in bad.headers["location"]

    run(test, tmp_path)


def test_story_page_shows_text_with_hits_matches_and_alerts(tmp_path) -> None:
    async def test(site: Site) -> None:
        page = (await site.client.get("/story/1")).text
        assert "&lt;script&gt;alert" in page
        assert "drone" in page and "critical" in page
        assert '<a href="https://news.example/a?b=1&amp;c=2" rel="noopener noreferrer"' in page
        sneaky = (await site.client.get("/story/2")).text
        assert "javascript:" not in sneaky

    run(test, tmp_path)


def test_next_never_leaves_the_site(tmp_path) -> None:
    async def test(site: Site) -> None:
        token = await site.csrf()
        for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
            done = await site.client.post("/story/2/relevant", data={"csrf": token, "next": target})
            assert done.headers["location"].startswith("/today?"), target

    run(test, tmp_path)


# --------------------------------------------------------------------------
# Feeds
# --------------------------------------------------------------------------

FEEDS_TOML = """# my feeds, with comments that must survive edits

[[feed]]
name = "kyiv-news"   # the main one
url = "http://127.0.0.1:9/k.xml"
"""


def _page_with_feeds(feed_server, *paths: str) -> str:
    from support.feeds import Item, rss
    from support.feedserver import static

    links = "".join(f'<link rel="alternate" type="application/rss+xml" title="Feed {p}" href="{p}">'
                    for p in paths)
    feed_server.routes["/site/"] = static(f"<html><head>{links}</head><body>hi</body></html>".encode(),
                                          "text/html; charset=utf-8")
    for path in paths:
        feed_server.routes[path] = static(rss([Item("x", "A story")], title=f"Feed {path}"))
    return feed_server.url("/site/")


def test_feeds_page_shows_health_and_sorts(tmp_path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "feeds.toml").write_text(FEEDS_TOML + '[[feed]]\nname = "other-news"\n'
                                                  'url = "http://u:secretpw@127.0.0.1:9/o.xml"\n')

    async def test(site: Site) -> None:
        page = (await site.client.get("/feeds")).text
        assert "kyiv-news" in page and "secretpw" not in page
        row = page[page.index('id="feed-kyiv-news"'):]
        assert '<td class="entries">2</td>' in row[:row.index("</tr>")]
        by_entries = (await site.client.get("/feeds?sort=entries&desc=1")).text
        assert by_entries.index('id="feed-kyiv-news"') < by_entries.index('id="feed-other-news"')
        by_name = (await site.client.get("/feeds?sort=name&desc=1")).text
        assert by_name.index('id="feed-other-news"') < by_name.index('id="feed-kyiv-news"')

    run(test, tmp_path)


def test_add_a_feed_by_its_page_with_discovery_keeps_comments(tmp_path, feed_server) -> None:
    (tmp_path / "cfg").mkdir()
    feeds = tmp_path / "cfg" / "feeds.toml"
    feeds.write_text(FEEDS_TOML)
    one = _page_with_feeds(feed_server, "/one.xml")

    async def test(site: Site) -> None:
        token = await site.csrf("/feeds")
        added = await site.client.post("/feeds/add", data={"csrf": token, "url": one, "language": "en"})
        assert added.status_code == 303 and "Added+feed" in added.headers["location"], added.headers
        assert "No+daemon+runs" in added.headers["location"]
        page = (await site.client.get(added.headers["location"])).text
        assert "Added feed" in page and feed_server.url("/one.xml") in page
        bad = await site.client.post("/feeds/add", data={"csrf": token, "url": "ftp://x/"})
        assert "problem=" in bad.headers["location"]

    run(test, tmp_path)
    text = feeds.read_text()
    assert "# my feeds, with comments" in text and "# the main one" in text
    assert feed_server.url("/one.xml") in text and 'language = "en"' in text


def test_a_page_with_several_feeds_asks_which(tmp_path, feed_server) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "feeds.toml").write_text(FEEDS_TOML)
    site_url = _page_with_feeds(feed_server, "/a.xml", "/b.xml")

    async def test(site: Site) -> None:
        token = await site.csrf("/feeds")
        asked = await site.client.post("/feeds/add", data={"csrf": token, "url": site_url})
        assert asked.status_code == 200 and "lists 2 feeds" in asked.text
        chosen = await site.client.post("/feeds/add", data={"csrf": token, "url": feed_server.url("/b.xml"),
                                                            "as_given": "1", "name": "bee"})
        assert "Added+feed+bee" in chosen.headers["location"]

    run(test, tmp_path)
    assert 'name = "bee"' in (tmp_path / "cfg" / "feeds.toml").read_text()


def test_pause_resume_reset_and_remove_a_feed(tmp_path) -> None:
    from monitor.store.database import Store

    (tmp_path / "cfg").mkdir()
    feeds = tmp_path / "cfg" / "feeds.toml"
    feeds.write_text(FEEDS_TOML)

    def status() -> str:
        store = Store.open(tmp_path / "monitor.db")
        try:
            return store.feed_state("kyiv-news").status
        finally:
            store.close()

    async def test(site: Site) -> None:
        token = await site.csrf("/feeds")
        paused = await site.client.post("/feeds/kyiv-news/pause", data={"csrf": token})
        assert "Paused" in paused.headers["location"]
        assert await asyncio.to_thread(status) == "paused"
        assert "Resume</button>" in (await site.client.get("/feeds")).text
        await site.client.post("/feeds/kyiv-news/resume", data={"csrf": token})
        assert await asyncio.to_thread(status) != "paused"
        reset = await site.client.post("/feeds/kyiv-news/reset", data={"csrf": token})
        assert "Reset" in reset.headers["location"]
        unknown = await site.client.post("/feeds/nope/pause", data={"csrf": token})
        assert "problem=" in unknown.headers["location"]
        removed = await site.client.post("/feeds/kyiv-news/remove", data={"csrf": token})
        assert "Removed" in removed.headers["location"]

    run(test, tmp_path)
    assert "kyiv-news" not in feeds.read_text() and "# my feeds" in feeds.read_text()


def test_opml_export_and_import(tmp_path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "feeds.toml").write_text(
        FEEDS_TOML.replace("http://127.0.0.1:9/k.xml", "http://u:secretpw@127.0.0.1:9/k.xml"))
    opml = (b'<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
            b'<outline text="Blog" xmlUrl="http://127.0.0.1:9/blog.xml" category="tech"/>'
            b'<outline text="kyiv-news" xmlUrl="http://127.0.0.1:9/k2.xml"/></body></opml>')

    async def test(site: Site) -> None:
        exported = await site.client.get("/feeds.opml")
        assert exported.headers["content-type"].startswith("text/x-opml")
        assert b"127.0.0.1:9/k.xml" in exported.content and b"secretpw" not in exported.content
        token = await site.csrf("/feeds")
        done = await site.client.post("/feeds/import", data={"csrf": token},
                                      files={"file": ("subs.opml", opml, "text/xml")})
        assert "Imported+1" in done.headers["location"] and "skipped+1" in done.headers["location"]
        broken = await site.client.post("/feeds/import", data={"csrf": token},
                                        files={"file": ("x.opml", b"not xml", "text/xml")})
        assert "problem=" in broken.headers["location"]

    run(test, tmp_path)
    assert "blog.xml" in (tmp_path / "cfg" / "feeds.toml").read_text()


# --------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------


def test_alerts_page_masks_secrets_and_retries_a_dead_alert_without_a_daemon(tmp_path, webhook) -> None:
    from web_support import add_dead_alert, build_matches_db, write_alerts_config

    build_matches_db(tmp_path / "monitor.db")
    alert_id = add_dead_alert(tmp_path / "monitor.db", webhook.url())
    write_alerts_config(tmp_path / "cfg", webhook.url("hookuser:hooksecretpw"))

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts?state=dead")).text
        assert "hooksecretpw" not in page and "chat" in page
        assert f'id="alert-{alert_id}"' in page and "connection refused" in page
        token = await site.csrf("/alerts")
        none = await site.client.post("/alerts/retry", data={"csrf": token})
        assert "problem=" in none.headers["location"]
        done = await site.client.post("/alerts/retry", data={"csrf": token, "id": str(alert_id)})
        assert "1+alert+due+now" in done.headers["location"] and "Sent+1" in done.headers["location"]
        assert len(webhook.posts) == 1 and "Drone factory" in str(webhook.posts[0])
        sent = (await site.client.get("/alerts?state=sent")).text
        assert f'id="alert-{alert_id}"' in sent
        tested = await site.client.post("/alerts/test", data={"csrf": token, "name": "chat"})
        assert "Test+message" in tested.headers["location"] and "chat%3A+ok" in tested.headers["location"]

    run(test, tmp_path)
    assert len(webhook.posts) == 2


# --------------------------------------------------------------------------
# Watch
# --------------------------------------------------------------------------

WATCH = """# the desk's watch: comments stay
[entity.drones]
aliases = ["drone*", "UAV"]   # every kind

[rule.drones]
query = "@drones"
severity = "critical"

[rule.energy]
query = "energy"
"""


def _watch_site(tmp_path: Path) -> Path:
    (tmp_path / "cfg").mkdir(exist_ok=True)
    path = tmp_path / "cfg" / "watch.toml"
    path.write_text(WATCH)
    return path


def _form(page: str, **values: str) -> dict[str, str]:
    import html
    import re

    original = html.unescape(re.search(r'<textarea name="original" hidden>(.*?)</textarea>', page, re.S).group(1))
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return {"csrf": token, "original": original, "text": original, "period": "30d", **values}


def test_watch_page_lists_rules_entities_and_shows_the_file(tmp_path) -> None:
    _watch_site(tmp_path)

    async def test(site: Site) -> None:
        page = (await site.client.get("/watch")).text
        assert 'id="rule-drones"' in page and "@drones" in page and "drone*, UAV" in page
        assert "# the desk&#39;s watch: comments stay" in page

    run(test, tmp_path)


def test_a_syntax_error_is_shown_at_its_line_and_column_and_nothing_is_written(tmp_path) -> None:
    path = _watch_site(tmp_path)

    async def test(site: Site) -> None:
        page = (await site.client.get("/watch")).text
        broken = WATCH.replace('query = "energy"', 'query = "energy')
        checked = await site.client.post("/watch", data=_form(page, text=broken, action="save"))
        assert checked.status_code == 422
        assert "line 10" in checked.text and "column" in checked.text
        assert "energy" in checked.text  # the person's text is kept in the editor
        bad_query = WATCH.replace('query = "energy"', 'query = "energy AND (grid"')
        checked = await site.client.post("/watch", data=_form(page, text=bad_query, action="check"))
        assert checked.status_code == 422 and "line 10" in checked.text

    run(test, tmp_path)
    assert path.read_text() == WATCH


def test_try_backtest_and_save_an_edit(tmp_path) -> None:
    path = _watch_site(tmp_path)
    edited = WATCH.replace('query = "energy"', 'query = "energy OR swarm OR city"').replace(
        'query = "@drones"', 'query = "@drones NOT city"')

    async def test(site: Site) -> None:
        page = (await site.client.get("/watch")).text
        tried = await site.client.post("/watch", data=_form(page, text=edited, action="try",
                                                            sample="A swarm over the grid"))
        assert tried.status_code == 200 and 'id="tried"' in tried.text and "<mark>swarm</mark>" in tried.text
        # a false positive the person marked, to see in the backtest
        token = await site.csrf()
        await site.client.post("/story/2/false-positive", data={"csrf": token, "reason": "not ours"})
        backtest = await site.client.post("/watch", data=_form(page, text=edited, action="backtest",
                                                               period="90d"))
        assert backtest.status_code == 200
        table = backtest.text[backtest.text.index('id="backtest"'):]
        assert "+ added</td><td>energy</td><td><a href=\"/story/3\">Drones over the city" in table
        assert "− removed</td><td>drones</td><td><a href=\"/story/3\">" in table
        assert "false positive</td><td>energy</td>" in table and "still matches; not ours" in table
        saved = await site.client.post("/watch", data=_form(page, text=edited, action="save"))
        assert saved.status_code == 303 and "Saved+watch.toml" in saved.headers["location"]
        stale = await site.client.post("/watch", data=_form(page, text=edited + "\n", action="save"))
        assert stale.status_code == 409 and "changed since you opened it" in stale.text

    run(test, tmp_path, clock=lambda: NOW.replace(hour=12))
    assert path.read_text() == edited


def test_switch_a_rule_off_keeps_the_comments(tmp_path) -> None:
    path = _watch_site(tmp_path)

    async def test(site: Site) -> None:
        token = await site.csrf("/watch")
        done = await site.client.post("/watch/rule/energy", data={"csrf": token, "enabled": "0"})
        assert "switched+off" in done.headers["location"]

    run(test, tmp_path)
    text = path.read_text()
    assert "enabled = false" in text and "# every kind" in text and "# the desk's watch" in text


# --------------------------------------------------------------------------
# Search and Report
# --------------------------------------------------------------------------


def test_search_finds_word_forms_and_escapes(tmp_path) -> None:
    async def test(site: Site) -> None:
        empty = (await site.client.get("/search")).text
        assert 'id="result-count"' not in empty
        found = (await site.client.get("/search?q=drone&period=all")).text
        assert "2 stories found" in found and "<mark>Drones</mark>" in found
        assert "&lt;script&gt;" in found and "<script>alert" not in found
        none = (await site.client.get("/search?q=zeppelin&period=all")).text
        assert "0 stories found" in none
        bad = (await site.client.get("/search?q=%40nosuchentity&period=all")).text
        assert 'class="flash bad"' in bad and "nosuchentity" in bad

    run(test, tmp_path)


def test_report_page_chart_and_download(tmp_path) -> None:
    async def test(site: Site) -> None:
        page = (await site.client.get("/report?period=7d")).text
        assert "<strong>3</strong> matches" in page and "kyiv-news, other-news" in page
        chart = await site.client.get("/report/chart.svg?period=7d")
        assert chart.headers["content-type"] == "image/svg+xml"
        assert chart.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
        assert b"<svg" in chart.content and b"<script" not in chart.content
        download = await site.client.get("/report.html?period=7d")
        assert download.headers["content-disposition"].startswith("attachment")
        assert "What was caught" in download.text

    run(test, tmp_path, clock=lambda: NOW.replace(hour=12))


def test_without_a_password_only_localhost_names_are_served(tmp_path) -> None:
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) must not read or post."""
    async def test(site: Site) -> None:
        for host, allowed in (("127.0.0.1:8080", True), ("localhost:8080", True), ("[::1]:8080", True),
                              ("evil.example:8080", False), ("evil.example", False)):
            page = await site.client.get("/today", headers={"host": host})
            assert (page.status_code == 200) is allowed, host
        assert (await site.client.get("/healthz", headers={"host": "evil.example"})).status_code == 200

    run(test, tmp_path)


def test_a_message_in_a_crafted_link_is_not_shown(tmp_path) -> None:
    async def test(site: Site) -> None:
        crafted = (await site.client.get("/today?done=Your+session+expired:+log+in+at+evil.example")).text
        assert "class=\"flash" not in crafted
        assert "Your session expired" not in crafted.split("<main>")[1].split("<form")[0]
        token = await site.csrf()
        done = await site.client.post("/story/2/relevant", data={"csrf": token})
        shown = (await site.client.get(done.headers["location"])).text
        assert "Marked relevant." in shown
        other = await client_for(site.context).__aenter__()  # another browser: another session
        try:
            assert "Marked relevant." not in (await other.get(done.headers["location"])).text
        finally:
            await other.aclose()

    run(test, tmp_path)


def test_wrong_passwords_pause_logins(tmp_path) -> None:
    async def test(site: Site) -> None:
        token = await site.csrf("/login")
        for _ in range(10):
            wrong = await site.client.post("/login", data={"csrf": token, "password": "guess"})
            assert wrong.status_code == 403
        paused = await site.client.post("/login", data={"csrf": token, "password": "correct horse"})
        assert paused.status_code == 429 and "wait a minute" in paused.text

    run(test, tmp_path, password_hash=hash_password("correct horse"))


def test_edit_an_entity_s_aliases_with_the_comment_keeping_editor(tmp_path) -> None:
    path = _watch_site(tmp_path)

    async def test(site: Site) -> None:
        token = await site.csrf("/watch")
        added = await site.client.post("/watch/entity/drones", data={"csrf": token, "action": "add",
                                                                    "value": "безпілотник"})
        assert "Added+alias" in added.headers["location"]
        excluded = await site.client.post("/watch/entity/drones", data={"csrf": token, "action": "exclude",
                                                                       "value": "drone racing"})
        assert "no+longer+counts" in excluded.headers["location"]
        removed = await site.client.post("/watch/entity/drones", data={"csrf": token, "action": "remove",
                                                                      "value": "UAV"})
        assert "Removed+alias" in removed.headers["location"]
        missing = await site.client.post("/watch/entity/drones", data={"csrf": token, "action": "remove",
                                                                      "value": "zeppelin"})
        assert "problem=" in missing.headers["location"]

    run(test, tmp_path)
    text = path.read_text()
    assert "безпілотник" in text and "drone racing" in text and '"UAV"' not in text
    assert "# every kind" in text or "# the desk's watch" in text


def test_the_web_layer_holds_no_sql() -> None:
    """Pages read and write through the library calls the CLI uses (developers' guide)."""
    import re

    web = Path(__file__).resolve().parents[1] / "monitor" / "web"
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s|\.execute\(|\.query\(")
    offenders = [str(path.relative_to(web)) for path in web.rglob("*.py") if sql.search(path.read_text())]
    assert not offenders
