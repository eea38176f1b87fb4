"""`monitor search|matches|show|mute|report` as real subprocesses, on a database filled by
a real `monitor run --once` against a local feed with the shipped watch."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.feeds import Item, rss
from support.feedserver import FeedServer, static
from support.sinks import Webhook
from test_cli import monitor

NOW = datetime.now(UTC)
DRONES = "Chinese drone parts keep flowing to Russia"
CHINA_UK = "Китай постачає Росії компоненти для дронів"
ITEMS = [
    Item("drones", DRONES, summary="Shipments of Chinese drone engines reached Russia's factories.",
         published=NOW - timedelta(hours=1), link="https://news.example.org/drones"),
    Item("china-uk", CHINA_UK, summary="Делегація поїхала до Китаю.",
         published=NOW - timedelta(hours=2), link="https://news.example.org/china-uk"),
    Item("weather", "Weather in Kyiv", summary="Sunny and calm.", published=NOW - timedelta(hours=1)),
]


def _environment(base: Path) -> dict[str, str]:
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MONITOR_", "XDG_", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"))}
    env.update(HOME=str(home), MONITOR_CONFIG=str(base / "cfg"), MONITOR_DB=str(base / "state" / "monitor.db"),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]), NO_PROXY="127.0.0.1,localhost")
    return env


@pytest.fixture(scope="module")
def hook():
    """A webhook destination that fails (HTTP 500) until a test says otherwise."""
    receiver = Webhook(status=500).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def filled(tmp_path_factory, hook) -> dict[str, str]:
    """The shipped watch (copied by init), one local feed, one `run --once`: two stories
    match, one does not, and both alerts failed to reach the webhook."""
    env = _environment(tmp_path_factory.mktemp("reading"))
    with FeedServer() as server:
        server.routes["/feed"] = static(rss(ITEMS, title="Local Outlet"))
        monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
        cfg = Path(env["MONITOR_CONFIG"])
        (cfg / "alerts.toml").write_text(f'[[destination]]\nname = "hook"\nurl = "{hook.url()}"\n',
                                         encoding="utf-8")
        monitor("feeds", "add", server.url("/feed"), "--name", "local", env=env, check=True)
        run = monitor("run", "--once", env=env)
        assert run.returncode == 1, "the hook fails: `run --once` says so with exit 1"
        assert "matched=2" in run.stdout and "alerts_failed=2" in run.stdout, run.stdout + run.stderr
        yield env


@pytest.fixture(scope="module")
def story_ids(filled) -> dict[str, int]:
    return {row["title"]: row["id"] for row in lines(monitor("stories", "--json", env=filled, check=True))}


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# --------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------


def test_search_finds_inflected_forms_and_marks_the_hits(filled, story_ids):
    found = monitor("search", "Китай", env=filled)
    assert found.returncode == 0, found.stderr
    assert f"{story_ids[CHINA_UK]}  " in found.stdout
    assert "[[Китай]] постачає" in found.stdout and "до [[Китаю]]" in found.stdout
    assert DRONES not in found.stdout

    as_json = lines(monitor("search", "drone engines", "--json", env=filled, check=True))
    assert [row["id"] for row in as_json] == [story_ids[DRONES]]
    terms = {(hit["field"], hit["term"]) for hit in as_json[0]["hits"]}
    assert terms == {("title", "drone"), ("summary", "drone"), ("summary", "engines")}


def test_search_exit_codes(filled):
    nothing = monitor("search", "submarine", env=filled)
    assert nothing.returncode == 1 and nothing.stdout == ""
    bad = monitor("search", '"unclosed', env=filled)
    assert bad.returncode == 2 and "never closed" in bad.stderr and "Traceback" not in bad.stderr


def test_search_understands_the_watch_entities(filled, story_ids):
    found = lines(monitor("search", "@china", "--json", env=filled, check=True))
    assert {row["id"] for row in found} == {story_ids[DRONES], story_ids[CHINA_UK]}


# --------------------------------------------------------------------------
# matches, show
# --------------------------------------------------------------------------


def test_matches_lists_newest_first_with_hits_that_point_into_the_text(filled, story_ids):
    rows = lines(monitor("matches", "--json", env=filled, check=True))
    assert {row["id"] for row in rows} == {story_ids[DRONES], story_ids[CHINA_UK]}
    assert [row["created"] for row in rows] == sorted((row["created"] for row in rows), reverse=True)
    drones = next(row for row in rows if row["id"] == story_ids[DRONES])
    assert drones["rule"] == "china_military_supplies" and drones["severity"] == "critical"
    assert drones["feed"] == "local" and drones["url"] == "https://news.example.org/drones"
    assert not drones["muted"]
    title_hits = [DRONES[hit["start"]:hit["end"]] for hit in drones["hits"] if hit["field"] == "title"]
    assert title_hits == ["Chinese", "drone", "parts", "Russia"]

    text = monitor("matches", "--since", "1h", env=filled, check=True).stdout
    assert "[[Chinese]] [[drone]] [[parts]] keep flowing to [[Russia]]" in text
    assert "\x1b[" not in text  # no colour when not on a terminal


def test_matches_of_a_rule_that_caught_nothing_exit_1(filled):
    none = monitor("matches", "--rule", "china_sanctions", env=filled)
    assert none.returncode == 1 and none.stdout == ""


def test_show_prints_text_matches_and_alert_status(filled, story_ids):
    story_id = story_ids[DRONES]
    shown = monitor("show", str(story_id), env=filled, check=True).stdout
    assert shown.startswith(f"Story {story_id} · local\n")
    assert "[[Chinese]] [[drone]] [[parts]] keep flowing to [[Russia]]" in shown  # the title, marked
    assert "Shipments of [[Chinese]] [[drone]] [[engines]] reached [[Russia's]] factories." in shown
    assert "https://news.example.org/drones" in shown
    assert "title 0-7 'Chinese' <- Chinese" in shown
    assert "china_military_supplies · critical" in shown
    alert_line = next(line for line in shown.splitlines() if line.strip().startswith("#"))
    assert "hook" in alert_line and "failed" in alert_line
    assert "last error:" in shown

    data = lines(monitor("show", str(story_id), "--json", env=filled, check=True))[0]
    assert data["id"] == story_id and data["title"] == DRONES
    assert [m["rule"] for m in data["matches"]] == ["china_military_supplies"]
    assert data["matches"][0]["current"] is True
    assert [(a["destination"], a["status"]) for a in data["alerts"]] == [("hook", "failed")]


def test_show_unknown_id_exits_1_without_a_traceback(filled):
    missing = monitor("show", "99999", env=filled)
    assert missing.returncode == 1 and "no story with ID 99999" in missing.stderr
    assert "Traceback" not in missing.stderr


# --------------------------------------------------------------------------
# mute
# --------------------------------------------------------------------------


@pytest.fixture
def own_copy(filled, tmp_path) -> dict[str, str]:
    """The filled database copied, so muting it leaves the other tests' copy alone."""
    db = tmp_path / "monitor.db"
    shutil.copy(filled["MONITOR_DB"], db)
    return {**filled, "MONITOR_DB": str(db)}


def test_mute_stops_the_alerts_of_a_false_positive_for_good(own_copy, story_ids, hook):
    env = own_copy
    muted_id, other_id = story_ids[DRONES], story_ids[CHINA_UK]
    muted = monitor("mute", str(muted_id), "--reason", "a trade-fair story", env=env, check=True)
    assert "muted story" in muted.stdout and "1 unsent alert muted" in muted.stdout
    with sqlite3.connect(env["MONITOR_DB"]) as conn:
        statuses = dict(conn.execute("SELECT entry_id, status FROM alerts").fetchall())
    assert statuses == {muted_id: "muted", other_id: "failed"}

    hook.status = 200  # the destination works again: only the unmuted story gets through
    try:
        retried = monitor("alerts", "retry", "--all", env=env, check=True)
        assert "1 alert due now" in retried.stdout and "sent 1" in retried.stdout
    finally:
        hook.status = 500
    assert len(hook.posts) == 1 and CHINA_UK in hook.posts[0]["title"]

    shown = lines(monitor("show", str(muted_id), "--json", env=env, check=True))[0]
    match, = shown["matches"]
    assert match["muted"] and match["mute_reason"] == "a trade-fair story"
    assert [alert["status"] for alert in shown["alerts"]] == ["muted"]


def test_mute_of_a_rule_the_story_did_not_match_exits_1(own_copy, story_ids):
    wrong_rule = monitor("mute", str(story_ids[DRONES]), "--rule", "china_sanctions", env=own_copy)
    assert wrong_rule.returncode == 1 and "its rules: china_military_supplies" in wrong_rule.stderr


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def test_report_counts_today_per_rule_and_outlet(filled, tmp_path):
    page = tmp_path / "report.html"
    result = monitor("report", "--since", "1d", "--html", str(page), env=filled, check=True)
    text = result.stdout
    today = datetime.now(UTC).date().isoformat()  # the shipped config's zone is UTC
    assert "2 stories matched (2 rule matches) from 1 outlet" in text
    assert any(line.split() == [today, "2", "2", "china_military_supplies", "2"] for line in text.splitlines())
    assert any(line.split() == ["local", "2", "2", "china_military_supplies", "2"] for line in text.splitlines())
    assert f"wrote {page}" in text
    html = page.read_text(encoding="utf-8")
    assert '<div id="chart" class="chart"><svg' in html
    assert 'href="https://news.example.org/drones"' in html

    rows = lines(monitor("report", "--since", "1d", "--json", env=filled, check=True))
    summary = rows[0]
    assert summary["kind"] == "summary" and (summary["matches"], summary["stories"]) == (2, 2)
    assert [row["outlet"] for row in rows if row["kind"] == "outlet"] == ["local"]
    assert {row["title"] for row in rows if row["kind"] == "story"} == {DRONES, CHINA_UK}
