"""`monitor feeds add|import|export|pause|resume|reset` as real subprocesses against a local server."""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config.load import load_config
from monitor.config.paths import init_config_dir
from monitor.store.lock import DaemonLock
from support.feeds import Item, rss
from support.feedserver import send, static
from test_cli import monitor

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# the group as `monitor` loads it: with the commands that other modules add to it
FEEDS_GROUP = main.get_command(click.Context(main), "feeds")


@pytest.fixture
def cfg(env):
    """A config folder with no feeds and no watch rules (matching is not under test here)."""
    folder = Path(env["MONITOR_CONFIG"])
    init_config_dir(folder, no_feeds=True)
    (folder / "watch.toml").write_text("")
    return env


def configured_feeds(env: dict[str, str]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(feed.name, feed.url, feed.tags) for feed in load_config(Path(env["MONITOR_CONFIG"])).feeds]


def feeds_text(env: dict[str, str]) -> str:
    return (Path(env["MONITOR_CONFIG"]) / "feeds.toml").read_text(encoding="utf-8")


def write_feeds(env: dict[str, str], feeds: dict[str, str]) -> None:
    blocks = [f'[[feed]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds.items()]
    (Path(env["MONITOR_CONFIG"]) / "feeds.toml").write_text("\n".join(blocks), encoding="utf-8")


def feed_row(env: dict[str, str], name: str) -> dict:
    with sqlite3.connect(f"file:{env['MONITOR_DB']}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM feeds WHERE name = ?", [name]).fetchone())


def serve_site(feed_server) -> str:
    """A page listing four feeds (see fixtures/html/several_alternates.html); its URL."""
    page = (FIXTURES / "html" / "several_alternates.html").read_bytes()
    feed_server.routes["/news/"] = static(page, "text/html; charset=utf-8")
    return feed_server.url("/news/")


# --------------------------------------------------------------------------
# add with discovery
# --------------------------------------------------------------------------


def test_add_page_with_several_feeds_off_a_terminal_lists_them_and_exits_2(cfg, feed_server):
    before = feeds_text(cfg)
    result = monitor("feeds", "add", serve_site(feed_server), env=cfg)
    assert result.returncode == 2, result.stderr
    assert "lists 4 feeds" in result.stderr and "--first" in result.stderr and "--all" in result.stderr
    assert f"1. Example News » Feed  {feed_server.url('/news/feed.xml')}  (application/rss+xml)" in result.stderr
    assert "4. JSON  " in result.stderr and "Traceback" not in result.stderr
    assert feeds_text(cfg) == before


def test_add_page_with_all_adds_every_feed_named_from_its_title(cfg, feed_server):
    result = monitor("feeds", "add", serve_site(feed_server), "--all", "--tag", "news", env=cfg, check=True)
    assert configured_feeds(cfg) == [
        ("example-news-feed", feed_server.url("/news/feed.xml"), ("news",)),
        ("example-news-atom", feed_server.url("/atom.xml"), ("news",)),
        ("comments", "https://comments.example.org/feed/", ("news",)),
        ("json", feed_server.url("/news/feed.json"), ("news",)),
    ]
    assert result.stdout.count("added feed") == 4
    again = monitor("feeds", "add", serve_site(feed_server), "--all", env=cfg, check=True)
    assert again.stdout.count("already present") == 4 and len(configured_feeds(cfg)) == 4


def test_add_page_with_first_adds_only_the_first(cfg, feed_server):
    monitor("feeds", "add", serve_site(feed_server), "--first", "--name", "example",
            "--interval", "30m", env=cfg, check=True)
    [feed] = load_config(Path(cfg["MONITOR_CONFIG"])).feeds
    assert (feed.name, feed.url, feed.interval) == ("example", feed_server.url("/news/feed.xml"), 1800)


def test_add_page_on_a_terminal_asks_which_feed(cfg, feed_server):
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"2\n")
        result = subprocess.run([sys.executable, "-m", "monitor", "feeds", "add", serve_site(feed_server)],
                                env=cfg, stdin=terminal, capture_output=True, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, result.stderr
    assert "2. Example News (Atom)" in result.stdout and "Which one?" in result.stdout
    assert configured_feeds(cfg) == [("example-news-atom", feed_server.url("/atom.xml"), ())]


def test_add_a_feed_url_names_it_from_its_title(cfg, feed_server):
    feed_server.routes["/rss.xml"] = static(rss([Item("a", "Story")], title="Kyiv Local"))
    monitor("feeds", "add", feed_server.url("/rss.xml"), env=cfg, check=True)
    assert configured_feeds(cfg) == [("kyiv-local", feed_server.url("/rss.xml"), ())]


def test_add_page_without_feed_links_finds_the_feed_at_a_common_path(cfg, feed_server):
    feed_server.routes["/"] = static((FIXTURES / "html" / "no_links.html").read_bytes(), "text/html")
    feed_server.routes["/feed"] = static(rss([Item("a", "Story")], title="Новини"))
    monitor("feeds", "add", feed_server.url("/"), env=cfg, check=True)
    assert configured_feeds(cfg) == [("новини", feed_server.url("/feed"), ())]


def test_add_page_with_no_feed_exits_1_saying_what_was_tried(cfg, feed_server):
    feed_server.routes["/"] = static((FIXTURES / "html" / "no_links.html").read_bytes(), "text/html")
    before = feeds_text(cfg)
    result = monitor("feeds", "add", feed_server.url("/"), env=cfg)
    assert result.returncode == 1
    assert f"no feed found at {feed_server.url('/')} (tried: " in result.stderr
    assert feed_server.url("/rss/") in result.stderr and feed_server.url("/index.xml") in result.stderr
    assert feeds_text(cfg) == before


def test_add_of_a_url_down_for_now_is_added_as_given_with_a_warning(cfg, feed_server):
    feed_server.routes["/rss/index.rss"] = lambda handler: send(handler, 503, b"busy")
    url = feed_server.url("/rss/index.rss")
    result = monitor("feeds", "add", url, env=cfg, check=True)
    assert f"could not fetch {url} to check it" in result.stderr
    assert configured_feeds(cfg) == [("127-0-0-1", url, ())]  # named after its host


@pytest.mark.parametrize("where", ["refused", "404", "410"])
def test_add_of_a_url_with_nothing_there_is_an_error_unless_forced(cfg, feed_server, where):
    if where == "refused":
        url = "http://127.0.0.1:9/rss/index.rss"
    else:
        feed_server.routes["/gone.xml"] = lambda handler: send(handler, int(where), b"no")
        url = feed_server.url("/gone.xml")
    result = monitor("feeds", "add", url, env=cfg)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"monitor: error: cannot add {url}" in result.stderr and "--force" in result.stderr
    assert configured_feeds(cfg) == []
    forced = monitor("feeds", "add", url, "--force", env=cfg, check=True)
    assert "added feed 127-0-0-1 " in forced.stdout
    assert configured_feeds(cfg) == [("127-0-0-1", url, ())]


def test_add_with_no_discover_adds_the_url_without_fetching_it(cfg, feed_server):
    monitor("feeds", "add", serve_site(feed_server), "--no-discover", env=cfg, check=True)
    assert configured_feeds(cfg) == [("127-0-0-1", feed_server.url("/news/"), ())]
    assert feed_server.requests == []


def test_all_and_first_together_is_a_usage_error(cfg, feed_server):
    result = monitor("feeds", "add", serve_site(feed_server), "--all", "--first", env=cfg)
    assert result.returncode == 2 and "exclude each other" in result.stderr
    assert feed_server.requests == [], "options are checked before any fetch"


# --------------------------------------------------------------------------
# OPML import and export
# --------------------------------------------------------------------------


def opml(name: str) -> str:
    return str(FIXTURES / "opml" / name)


def test_import_reader_exports_adds_feeds_with_tags_and_skips_them_the_second_time(cfg):
    result = monitor("feeds", "import", opml("miniflux.opml"), env=cfg, check=True)
    assert "added 3, skipped 0 (already present: same URL or name), invalid 0" in result.stdout
    monitor("feeds", "import", opml("feedly.opml"), env=cfg, check=True)
    assert configured_feeds(cfg) == [
        ("Hacker News", "https://news.ycombinator.com/rss", ("All",)),
        ("Kyiv Independent", "https://kyivindependent.com/rss/", ("Ukraine",)),
        ("Українська правда", "https://www.pravda.com.ua/rss/view_news/", ("Ukraine",)),
        ("Ars Technica", "https://feeds.arstechnica.com/arstechnica/index", ("Tech", "Asia")),
        ("The Verge", "https://www.theverge.com/rss/index.xml", ("Tech",)),
        ("The Diplomat", "https://thediplomat.com/feed/", ("Asia",)),
    ]
    again = monitor("feeds", "import", opml("miniflux.opml"), "--json", env=cfg, check=True)
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(row["result"], row["name"]) for row in rows] == [
        ("skipped", "Hacker News"), ("skipped", "Kyiv Independent"), ("skipped", "Українська правда")]
    assert rows[0]["reason"] == "already present: feed 'Hacker News' polls this URL"


def test_import_reports_invalid_outlines_and_name_clashes_but_imports_the_rest(cfg):
    write_feeds(cfg, {"Blog": "https://other.example/rss"})
    before = "# my feeds, by hand\n" + feeds_text(cfg)
    (Path(cfg["MONITOR_CONFIG"]) / "feeds.toml").write_text(before, encoding="utf-8")
    result = monitor("feeds", "import", opml("bad_outline.opml"), env=cfg)
    assert result.returncode == 0, result.stderr
    assert feeds_text(cfg).startswith(before), "the hand-written part is kept byte for byte"
    lines = result.stdout.splitlines()
    assert lines[-2] == "added 3, skipped 1 (already present: same URL or name), invalid 4"
    assert "skipped Blog: already present: a feed named 'Blog' (with another URL)" in lines
    assert any(line.startswith("invalid line 8: 'FTP feed': ") for line in lines)
    assert any(line.startswith("invalid line 10: 'No address at all': no xmlUrl") for line in lines)
    assert [name for name, _, _ in configured_feeds(cfg)] == [
        "Blog", "Good one", "Blog-2", "untitled-example-rss"]
    good = load_config(Path(cfg["MONITOR_CONFIG"])).feeds[1]
    assert good.tags == ("Tech", "News", "Ukraine") and good.language == "uk-ua"


def test_import_dry_run_reports_and_writes_nothing(cfg):
    before = feeds_text(cfg)
    result = monitor("feeds", "import", opml("freshrss.opml"), "--dry-run", env=cfg, check=True)
    assert "would add FreshRSS releases (https://github.com/FreshRSS/FreshRSS/releases.atom) " \
           "[Uncategorized]" in result.stdout
    assert "would add 2, skipped 0 (already present: same URL or name), invalid 1" in result.stdout
    assert feeds_text(cfg) == before


@pytest.mark.parametrize("name, message", [("entity_bomb.opml", "DOCTYPE"),
                                           ("../html/no_links.html", "not an OPML file")])
def test_import_of_a_file_that_is_not_opml_exits_2_and_changes_nothing(cfg, name, message):
    before = feeds_text(cfg)
    result = monitor("feeds", "import", opml(name), env=cfg)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert feeds_text(cfg) == before


def test_export_round_trips_through_import_into_another_config(cfg, tmp_path):
    monitor("feeds", "import", opml("feedly.opml"), env=cfg, check=True)
    out = tmp_path / "export.opml"
    written = monitor("feeds", "export", "-o", str(out), "--title", "Team feeds", env=cfg, check=True)
    assert "wrote 3 feeds" in written.stdout and b"<title>Team feeds</title>" in out.read_bytes()
    other = {**cfg, "MONITOR_CONFIG": str(tmp_path / "other")}
    init_config_dir(tmp_path / "other", no_feeds=True)
    monitor("feeds", "import", str(out), env=other, check=True)
    assert configured_feeds(other) == configured_feeds(cfg)


def test_export_to_stdout_leaves_credentials_out_unless_asked(cfg):
    write_feeds(cfg, {"private": "https://reader:s3cret@private.example/rss"})
    result = monitor("feeds", "export", env=cfg, check=True)
    assert 'xmlUrl="https://private.example/rss"' in result.stdout
    assert "s3cret" not in result.stdout + result.stderr and "--keep-credentials" in result.stderr


# --------------------------------------------------------------------------
# pause, resume, reset
# --------------------------------------------------------------------------


def test_paused_feed_is_not_fetched_until_resumed(cfg, feed_server):
    feed_server.routes["/a.xml"] = static(rss([Item("a1", "A story")]))
    feed_server.routes["/b.xml"] = static(rss([Item("b1", "B story")]))
    write_feeds(cfg, {"alpha": feed_server.url("/a.xml"), "beta": feed_server.url("/b.xml")})

    paused = monitor("feeds", "pause", "ALPHA", env=cfg, check=True)
    assert "paused feed alpha" in paused.stdout and "no daemon is running" in paused.stdout
    monitor("run", "--once", env=cfg, check=True)
    assert feed_server.requests_to("/a.xml") == [] and len(feed_server.requests_to("/b.xml")) == 1
    assert (feed_row(cfg, "alpha")["status"], feed_row(cfg, "beta")["status"]) == ("paused", "ok")

    resumed = monitor("feeds", "resume", "alpha", env=cfg, check=True)
    assert "resumed feed alpha" in resumed.stdout and feed_row(cfg, "alpha")["status"] == "new"
    monitor("run", "--once", env=cfg, check=True)
    assert len(feed_server.requests_to("/a.xml")) == 1


def test_reset_clears_the_gone_mark_and_keeps_the_baseline(cfg, feed_server):
    feed_server.routes["/gone.xml"] = static(rss([Item("g1", "Story")]))
    write_feeds(cfg, {"going": feed_server.url("/gone.xml")})
    monitor("run", "--once", env=cfg, check=True)
    feed_server.routes["/gone.xml"] = static(b"", status=410, etag=False, last_modified=False)
    monitor("run", "--once", env=cfg, check=True)
    assert feed_row(cfg, "going")["status"] == "gone"

    result = monitor("feeds", "reset", "going", env=cfg, check=True)
    assert "reset feed going" in result.stdout and "the 410 gone mark" in result.stdout
    row = feed_row(cfg, "going")
    assert (row["status"], row["last_error"], row["consecutive_errors"], row["baselined"]) == ("ok", None, 0, 1)
    feed_server.routes["/gone.xml"] = static(rss([Item("g1", "Story")]))
    requests = len(feed_server.requests_to("/gone.xml"))
    again = monitor("run", "--once", env=cfg, check=True)
    assert len(feed_server.requests_to("/gone.xml")) == requests + 1 and "new=0" in again.stdout


@pytest.mark.parametrize("command", ["pause", "resume", "reset"])
def test_unknown_feed_name_exits_2_with_the_known_names(cfg, command):
    write_feeds(cfg, {"alpha": "https://alpha.example/rss", "beta": "https://beta.example/rss"})
    result = CliRunner().invoke(main, ["feeds", command, "gamma"], env=cfg)
    assert result.exit_code == 2
    assert "no feed named 'gamma'" in result.output and "(feeds: 'alpha', 'beta')" in result.output
    assert not Path(cfg["MONITOR_DB"]).exists(), "nothing was written for an unknown name"


def test_pause_tells_a_running_daemon_to_reload(cfg):
    write_feeds(cfg, {"alpha": "https://alpha.example/rss"})
    received = []
    previous = signal.signal(signal.SIGHUP, lambda number, frame: received.append(number))
    lock = DaemonLock(Path(cfg["MONITOR_DB"]))
    lock.acquire()  # this test process stands in for the daemon
    try:
        result = monitor("feeds", "pause", "alpha", env=cfg, check=True)
    finally:
        lock.release()
        signal.signal(signal.SIGHUP, previous)
    assert received == [signal.SIGHUP]
    assert f"told the running daemon (pid {os.getpid()}) to reload" in result.stdout


# --------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(FEEDS_GROUP.commands))
def test_every_feeds_command_has_help_with_examples(command):
    result = CliRunner().invoke(main, ["feeds", command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output
