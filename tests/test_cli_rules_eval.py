"""`monitor rules eval PATH [--json]` as a real subprocess, on a small watch of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli import monitor

WATCH = """
[entity.china]
aliases = ["=China", "Chinese", "Beijing", "Китай", "Пекін"]

[group.drones]
terms = ["drone*", "дрон*"]

[group.war]
terms = ["war", "війна"]

[rule.china_drones]
description = "Chinese drones"
query = '@china AND #drones'
min_score = 4
severity = "warning"
tags = ["drones"]
"""

ITEMS = [
    # en: one hit, one miss (query holds, score too low), one false alarm, one true negative
    {"id": "e1", "title": "Chinese drones reach the front", "summary": "", "lang": "en", "label": True},
    {"id": "e2", "title": "", "summary": "Beijing ships drone engines.", "lang": "en", "label": True},
    {"id": "e3", "title": "China's drone show lights up Shenzhen", "summary": "", "lang": "en", "label": False},
    {"id": "e4", "title": "Weather in Lviv", "summary": "Rain all week.", "lang": "en", "label": False},
    # uk: a hit through inflection; a miss that names China and the war but no drones
    {"id": "u1", "title": "Китай постачає дрони", "summary": "", "lang": "uk", "label": True},
    {"id": "u2", "title": "Пекін про війну", "summary": "", "lang": "uk", "label": True},
    # borderline: flagged, but never scored
    {"id": "b1", "title": "Chinese drone makers at a fair", "summary": "", "lang": "en", "label": False,
     "borderline": True},
]


@pytest.fixture
def cfg(env):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    (Path(env["MONITOR_CONFIG"]) / "watch.toml").write_text(WATCH, encoding="utf-8")
    return env


@pytest.fixture
def items(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in ITEMS), encoding="utf-8")
    return path


def test_json_gives_scores_per_language_and_overall_then_each_error_explained(cfg, items):
    result = monitor("rules", "eval", str(items), "--json", env=cfg, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    scores = {row["lang"]: row for row in rows if row["type"] == "score"}
    assert list(scores) == ["en", "uk", "all"]
    assert (scores["en"]["tp"], scores["en"]["fp"], scores["en"]["fn"], scores["en"]["tn"]) == (1, 1, 1, 1)
    assert scores["en"]["borderline"] == 1 and scores["en"]["scored"] == 4
    assert (scores["uk"]["tp"], scores["uk"]["fn"]) == (1, 1)
    assert scores["all"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["all"]["recall"] == pytest.approx(0.5, abs=1e-4)
    assert scores["all"]["f1"] == pytest.approx(4 / 7, abs=1e-4)
    errors = {row["id"]: row for row in rows if row["type"] != "score"}
    assert set(errors) == {"e2", "e3", "u2"}
    assert errors["e3"]["type"] == "false_alarm"
    assert errors["e3"]["matches"][0]["rule"] == "china_drones"
    # summary-only: the query held but 1.5 + 1.5 < 4, and the explanation says so
    assert errors["e2"]["type"] == "miss"
    assert errors["e2"]["short"] == [{"rule": "china_drones", "score": 3.0, "min_score": 4.0}]
    assert errors["e2"]["named"] == {"@china": ["Beijing"], "#drones": ["drone"]}
    # no query held: the explanation lists what the text does name, inflected forms included
    assert errors["u2"]["short"] == [] and errors["u2"]["named"] == {"@china": ["Пекін"], "#war": ["війну"]}


def test_text_output_lists_scores_then_misses_and_false_alarms(cfg, items):
    result = monitor("rules", "eval", str(items), env=cfg, check=True)
    out = result.stdout
    assert out.splitlines()[0].startswith("en   precision=0.500 recall=0.500")
    assert "2 missed, 1 false alarms" in out
    assert "MISS e2 [en] (no title)" in out
    assert "china_drones: query held, score 3 < min_score 4" in out
    assert "FALSE ALARM e3 [en] China's drone show lights up Shenzhen" in out
    assert "fired china_drones" in out and "[[China's]]" in out
    assert "b1" not in out  # borderline items are not errors


def test_quiet_prints_scores_only(cfg, items):
    result = monitor("rules", "eval", str(items), "--quiet", env=cfg, check=True)
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["en", "uk", "all"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ('{"id": 1, "title": "a", "summary": "", "lang": "en", "label": true}\n{"id": 2, "title": \n',
     ":2: not valid JSON"),
    ('{"id": 1, "title": "a", "summary": "", "lang": "en"}\n', ":1: missing field 'label'"),
    ('{"id": 1, "title": "a", "summary": "", "lang": "en", "label": "yes"}\n',
     ":1: field 'label' must be true or false, not \"yes\""),
    ('\n{"id": 1, "title": "a", "summary": "", "lang": "en", "label": true}\n'
     '{"id": 1, "title": "b", "summary": "", "lang": "en", "label": false}\n', ":3: duplicate id 1 (first on line 2)"),
    ('["not", "an", "object"]\n', ":1: each line must be a JSON object, not list"),
    ("\n\n", "no labelled items"),
])
def test_bad_input_names_file_and_line_and_exits_2(cfg, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = monitor("rules", "eval", str(path), env=cfg)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{path}" in result.stderr and message in result.stderr


def test_the_written_set_spelling_relevant_is_read_as_label(cfg, tmp_path):
    path = tmp_path / "written.jsonl"
    path.write_text(json.dumps({"id": "x", "title": "Chinese drones", "summary": "", "lang": "en",
                                "relevant": True}) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in
            monitor("rules", "eval", str(path), "--json", env=cfg, check=True).stdout.splitlines()]
    assert rows[-1]["type"] == "score" and rows[-1]["tp"] == 1
