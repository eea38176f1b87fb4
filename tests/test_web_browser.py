"""The web interface in real headless Chromium: a person's tasks from start to end.

Each test saves a screenshot of the pages it visits under its temporary folder
(kept by pytest under /tmp/pytest-of-USER/), to look at after a run.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC
from pathlib import Path

import httpx
import pytest

from browser_support import chromium_or_skip, close, find, screenshot
from support.daemon import wait_until
from support.sinks import free_port
from web_support import build_matches_db

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def browser():
    driver = chromium_or_skip()
    yield driver
    close(driver)


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """conftest's clean environment, with a config folder made by `monitor init --no-feeds`."""
    subprocess.run([sys.executable, "-m", "monitor", "init", env["MONITOR_CONFIG"], "--no-feeds"],
                   env=env, check=True, capture_output=True, timeout=60)
    return env


class Served:
    """A `monitor ARGS` process serving the web interface on a free loopback port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", *args, "--http",
                                      f"127.0.0.1:{self.port}"], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if not wait_until(self._up, 30):
            self.stop()
            raise AssertionError(f"the web interface did not start:\n{self.output}")

    def _up(self) -> bool:
        try:
            return httpx.get(self.base + "/healthz", trust_env=False, timeout=2).status_code == 200
        except httpx.HTTPError:
            return self.proc.poll() is not None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.output = self.proc.communicate(timeout=20)[0]
        return self.output


def test_triage_a_story_and_see_it_leave_the_list(browser, env, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    Path(env["MONITOR_DB"]).parent.mkdir()
    build_matches_db(Path(env["MONITOR_DB"]))
    web = Served(env, "web")
    try:
        browser.get(web.base + "/today?period=all")
        stories = browser.find_elements(By.CSS_SELECTOR, "article.story")
        assert len(stories) == 2
        headlines = [s.find_element(By.CSS_SELECTOR, "h2").text for s in stories]
        assert any(h.startswith('<script>alert("x")</script>') for h in headlines)  # shown, not run
        assert not browser.find_elements(By.CSS_SELECTOR, "article script")
        local = browser.find_element(By.CSS_SELECTOR, "article.story time")
        assert local.get_attribute("title").endswith("UTC") and "UTC" not in local.text  # local time
        screenshot(browser, tmp_path, "today")
        first = stories[0]
        title = first.find_element(By.CSS_SELECTOR, "h2").text
        first.find_element(By.CSS_SELECTOR, "details summary").click()
        assert "score" in first.find_element(By.CSS_SELECTOR, "details").text
        first.find_element(By.XPATH, ".//button[normalize-space()='False positive']").click()
        assert "Marked a false positive" in find(browser, By.CSS_SELECTOR, ".notice").text
        remaining = [s.find_element(By.CSS_SELECTOR, "h2").text
                     for s in browser.find_elements(By.CSS_SELECTOR, "article.story")]
        assert title not in remaining and len(remaining) == 1
        browser.get(web.base + "/watch")  # the false positive shows in the backtest
        browser.find_element(By.CSS_SELECTOR, "select[name=period] option[value='30d']").click()
        browser.find_element(By.XPATH, "//button[@value='backtest']").click()
        rows = find(browser, By.ID, "backtest").text
        assert "false positive" in rows and title in rows, rows
        browser.get(web.base + "/today?period=all")
        browser.find_element(By.CSS_SELECTOR, "article.story h2 a").click()
        find(browser, By.CSS_SELECTOR, ".text mark")
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("<script>")
        assert browser.find_elements(By.CSS_SELECTOR, ".text mark")
        screenshot(browser, tmp_path, "story")
    finally:
        output = web.stop()
    assert "Traceback" not in output


def test_add_a_feed_and_see_its_health_after_a_poll(browser, env, feed_server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    from support.feeds import Item, rss
    from support.feedserver import static

    feed_server.routes["/news/"] = static(
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/news/rss.xml">'
        b"</head><body>news</body></html>", "text/html; charset=utf-8")
    feed_server.routes["/news/rss.xml"] = static(rss([Item("a", "First story"), Item("b", "Second story")],
                                                     title="Local News"))
    daemon = Served(env, "run")
    try:
        browser.get(daemon.base + "/feeds")
        browser.find_element(By.NAME, "url").send_keys(feed_server.url("/news/"))
        browser.find_element(By.NAME, "name").send_keys("local-news")
        browser.find_element(By.NAME, "interval").send_keys("1h")
        browser.find_element(By.XPATH, "//button[normalize-space()='Add']").click()
        flash = find(browser, By.CSS_SELECTOR, ".notice").text
        assert "Added feed local-news" in flash and "Applied." in flash, flash

        def polled() -> bool:
            browser.get(daemon.base + "/feeds")
            row = browser.find_element(By.ID, "feed-local-news")
            return (row.find_element(By.CSS_SELECTOR, ".status").text == "ok"
                    and row.find_element(By.CSS_SELECTOR, ".entries").text == "2")

        assert wait_until(polled, 30, every=0.5)
        assert feed_server.requests_to("/news/rss.xml")
        screenshot(browser, tmp_path, "feeds")
    finally:
        output = daemon.stop()
    assert "Traceback" not in output


def test_retry_a_dead_alert_and_see_it_arrive(browser, env, webhook, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    from web_support import add_dead_alert, write_alerts_config

    Path(env["MONITOR_DB"]).parent.mkdir()
    alert_id = add_dead_alert(Path(env["MONITOR_DB"]), webhook.url())
    write_alerts_config(Path(env["MONITOR_CONFIG"]), webhook.url("hookuser:hooksecretpw"))
    daemon = Served(env, "run")
    try:
        browser.get(daemon.base + "/alerts?state=dead")
        assert "hooksecretpw" not in browser.page_source
        row = browser.find_element(By.ID, f"alert-{alert_id}")
        assert row.find_element(By.CSS_SELECTOR, ".state").text == "dead"
        screenshot(browser, tmp_path, "alerts")
        row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        browser.find_element(By.XPATH, "//button[normalize-space()='Retry the ticked alerts']").click()
        assert "1 alert due now" in find(browser, By.CSS_SELECTOR, ".notice").text
        assert wait_until(lambda: webhook.posts, 30, every=0.2), daemon.output if hasattr(daemon, "output") else ""
        assert "Drone factory" in str(webhook.posts[0])

        def shown_sent() -> bool:
            browser.get(daemon.base + "/alerts?state=sent")
            return bool(browser.find_elements(By.ID, f"alert-{alert_id}"))

        assert wait_until(shown_sent, 10, every=0.3)
    finally:
        output = daemon.stop()
    assert "Traceback" not in output


WATCH = """# the desk's watch
[entity.drones]
aliases = ["drone*", "UAV"]

[rule.drones]
query = "@drones"
severity = "critical"
"""


def test_edit_a_rule_check_backtest_save_and_see_the_daemon_use_it(browser, env, feed_server,
                                                                    tmp_path) -> None:
    from selenium.webdriver.common.by import By

    from support.daemon import db_rows
    from support.feeds import Item, rss
    from support.feedserver import static

    config = Path(env["MONITOR_CONFIG"])
    (config / "watch.toml").write_text(WATCH)
    feed_server.routes["/feed.xml"] = static(rss([Item("z1", "Zeppelin over the harbour")]))
    (config / "feeds.toml").write_text(
        f'[[feed]]\nname = "harbour"\nurl = "{feed_server.url("/feed.xml")}"\ninterval = "1s"\n')
    db = Path(env["MONITOR_DB"])
    daemon = Served(env, "run")
    try:
        assert wait_until(lambda: db_rows(db, "SELECT id FROM entries"), 30)
        browser.get(daemon.base + "/watch")
        editor = browser.find_element(By.NAME, "text")
        broken = WATCH + '\n[rule.zeppelins]\nquery = "zeppelin*\nseverity = "warning"\n'
        editor.clear()
        editor.send_keys(broken)
        browser.find_element(By.XPATH, "//button[@value='check']").click()
        error = find(browser, By.ID, "watch-error").text
        assert "line 10" in error, error
        screenshot(browser, tmp_path, "watch-error")

        editor = browser.find_element(By.NAME, "text")
        assert "zeppelin*" in editor.get_attribute("value")  # the edit is kept to fix
        editor.clear()
        editor.send_keys(broken.replace('"zeppelin*\n', '"zeppelin*"\n'))
        browser.find_element(By.XPATH, "//button[@value='backtest']").click()
        assert find(browser, By.ID, "watch-ok")
        added = find(browser, By.ID, "backtest").text
        assert "+ added zeppelins Zeppelin over the harbour" in added, added
        screenshot(browser, tmp_path, "watch-backtest")

        browser.find_element(By.XPATH, "//button[@value='save']").click()
        flash = find(browser, By.CSS_SELECTOR, ".notice").text
        assert "Saved watch.toml. Applied." in flash, flash
        assert "zeppelin*" in (config / "watch.toml").read_text()

        feed_server.routes["/feed.xml"] = static(rss([Item("z1", "Zeppelin over the harbour"),
                                                      Item("z2", "Second zeppelin seen at dawn")]))

        def on_today() -> bool:
            browser.get(daemon.base + "/today?period=all")
            return "Second zeppelin seen at dawn" in browser.page_source

        assert wait_until(on_today, 30, every=0.5)
        assert "zeppelins" in browser.find_element(By.CSS_SELECTOR, "article.story").text
    finally:
        output = daemon.stop()
    assert "Traceback" not in output


PAGES = ("/today", "/story/1", "/feeds", "/watch", "/alerts?state=all", "/search?q=drone&period=all",
         "/report?period=7d")


def test_every_page_fits_a_phone_and_a_desktop(browser, env, tmp_path) -> None:
    """Screenshots of each page at phone and desktop widths; nothing is wider than the screen."""
    from datetime import datetime

    from web_support import build_showcase_db

    Path(env["MONITOR_DB"]).parent.mkdir()
    build_showcase_db(Path(env["MONITOR_DB"]), datetime.now(UTC))
    (Path(env["MONITOR_CONFIG"]) / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "{name}"\nurl = "http://127.0.0.1:9/{name}.xml"\n\n'
        for name in ("kyiv-desk", "asia-wire", "ukr-news")))
    web = Served(env, "web")
    try:
        for width, label in ((390, "phone"), (1280, "desktop")):
            for path in PAGES:
                browser.set_window_size(width, 900)
                browser.get(web.base + path)
                assert "Error" not in browser.title, (path, browser.title)
                overflow = browser.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, (path, width, overflow)
                name = path.strip("/").split("?")[0].replace("/", "-")
                screenshot(browser, tmp_path, f"{name}-{label}", width=width)
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        browser.get(web.base + "/today")
        background = browser.execute_script(
            "return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(22, 24, 27)", background  # the dark theme's --bg
        screenshot(browser, tmp_path, "today-dark", width=1280)
    finally:
        output = web.stop()
    assert "Traceback" not in output
