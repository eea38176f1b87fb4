"""`monitor match`, `monitor rules check|list|test|backtest` as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.feeds import Item, rss
from support.feedserver import static
from test_cli import monitor

WATCH = """
[entity.china]
aliases = ["China", "Chinese", "Beijing", "Китай", "Пекін"]
exclude = ["antique china"]

[group.drones]
terms = ["drone*", "дрон*"]

[rule.china_drones]
description = "Chinese drones"
query = '@china NEAR/10 #drones'
severity = "warning"
tags = ["drones"]
"""


@pytest.fixture
def cfg(env, tmp_path):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    (Path(env["MONITOR_CONFIG"]) / "watch.toml").write_text(WATCH, encoding="utf-8")
    return env


def test_match_jsonl_gives_one_line_per_item_with_offsets_in_input_order(cfg, tmp_path):
    items = tmp_path / "items.jsonl"
    lines = [
        {"id": "a", "title": "Chinese drones over Kharkiv"},
        {"title": "Weather in Lviv"},
        {"id": 7, "title": "Пекін постачає дрони", "lang": "uk"},
    ]
    items.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    result = monitor("match", str(items), "--json", env=cfg, check=True)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 1, 7]
    assert [o["matched"] for o in out] == [True, False, True]
    hits = out[0]["matches"][0]["hits"]
    assert out[0]["matches"][0]["rule"] == "china_drones"
    title = lines[0]["title"]
    assert {title[h["start"]:h["end"]] for h in hits} == {"Chinese", "drones"}
    assert all(h["field"] == "title" for h in hits)


def test_match_reads_a_feed_file_from_stdin(cfg):
    body = rss([Item("g1", "China sends drone parts"), Item("g2", "Antique china fair")]).decode()
    result = monitor("match", "-", "--json", env=cfg, check=True, input=body)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["matched"]) for o in out] == [("g1", True), ("g2", False)]


def test_rules_check_points_at_the_bad_token(cfg):
    path = Path(cfg["MONITOR_CONFIG"]) / "watch.toml"
    path.write_text(WATCH.replace("@china NEAR/10 #drones", "@china NEAR/10 (#drones"), encoding="utf-8")
    result = monitor("rules", "check", env=cfg)
    assert result.returncode == 2
    assert f"{path}:11:25:" in result.stderr and "never closed" in result.stderr
    assert result.stderr.rstrip().endswith(" " * 24 + "^")
    assert "Traceback" not in result.stderr


def test_rules_test_explains_and_exits_1_when_nothing_matches(cfg):
    hit = monitor("rules", "test", "Китаю вигідні дрони", "--lang", "uk", env=cfg)
    assert hit.returncode == 0 and "china_drones" in hit.stdout and "[[" in hit.stdout
    miss = monitor("rules", "test", "Antique china and a drone show", env=cfg)
    assert miss.returncode == 1 and "no rule matched" in miss.stdout


def test_rules_list_shows_each_rule(cfg):
    out = [json.loads(line) for line in monitor("rules", "list", "--json", env=cfg, check=True).stdout.splitlines()]
    assert out == [{"name": "china_drones", "enabled": True, "severity": "warning", "min_score": 0.0,
                    "tags": ["drones"], "query": "@china NEAR/10 #drones", "description": "Chinese drones"}]


def test_backtest_shows_what_a_rule_change_would_match(cfg, feed_server):
    feed_server.routes["/f"] = static(rss([Item("1", "Beijing drone exports to Russia"),
                                           Item("2", "China balloon over Kyiv")]))
    monitor("feeds", "add", feed_server.url("/f"), "--name", "local", env=cfg, check=True)
    monitor("run", "--once", env=cfg, check=True)
    path = Path(cfg["MONITOR_CONFIG"]) / "watch.toml"
    path.write_text(WATCH + '\n[rule.balloons]\nquery = "@china balloon*"\n', encoding="utf-8")
    out = [json.loads(line) for line in monitor("rules", "backtest", "--json", env=cfg, check=True).stdout.splitlines()]
    assert out == [{"change": "new", "rule": "balloons", "id": 2, "feed": "local",
                    "title": "China balloon over Kyiv"}]
    path.write_text(WATCH.replace("#drones", "#drones NOT Beijing"), encoding="utf-8")
    out = [json.loads(line) for line in monitor("rules", "backtest", "--json", env=cfg, check=True).stdout.splitlines()]
    assert [(o["change"], o["rule"], o["id"]) for o in out] == [("gone", "china_drones", 1)]


def test_backtest_lists_muted_false_positives(cfg, feed_server):
    feed_server.routes["/f"] = static(rss([Item("1", "Beijing drone exports to Russia")]))
    monitor("feeds", "add", feed_server.url("/f"), "--name", "local", env=cfg, check=True)
    monitor("run", "--once", env=cfg, check=True)
    monitor("mute", "1", "--reason", "export statistics, not the war", env=cfg, check=True)
    out = [json.loads(line) for line in monitor("rules", "backtest", "--json", env=cfg, check=True).stdout.splitlines()]
    assert out == [{"change": "muted", "rule": "china_drones", "id": 1, "feed": "local",
                    "title": "Beijing drone exports to Russia", "reason": "export statistics, not the war",
                    "still_matches": True}]
    text = monitor("rules", "backtest", env=cfg, check=True).stdout
    assert "1 muted as false positives" in text and "still matches; export statistics" in text
