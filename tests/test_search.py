"""Full-text search over stored stories: word forms, the lazy index, filters, muting."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from monitor.alert.outbox import mute_alerts
from monitor.errors import MonitorError, UsageError
from monitor.match import parse_watch_text
from monitor.models import Entry, FeedConfig, Hit, Match
from monitor.read.search import get_story, index_pending, list_matches, mute, muted_matches, search
from monitor.store.database import Store
from monitor.store.schema import migrations
from monitor.store.search import pending_count

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_location: Path | str):
    opened = Store.open(store_location)
    opened.sync_feeds([FeedConfig("ukrpravda", "http://127.0.0.1:9/uk", 600),
                       FeedConfig("kyivindependent", "http://127.0.0.1:9/en", 600)], T0)
    yield opened
    opened.close()


def put(store: Store, feed: str, guid: str, title: str, summary: str = "", *, at: datetime = T0,
        language: str | None = None, matches: tuple[Match, ...] = ()) -> int:
    """Store one story the way a poll does; returns its id."""
    entry = Entry(feed=feed, guid=guid, url=f"https://example.org/{guid}", title=title, summary=summary,
                  language=language, content_hash=f"{guid}:{title}:{summary}")
    (_, kind), = store.classify(feed, [entry])
    store.save_poll(feed, [(entry, kind, True, list(matches))], at, {}, {}, keep=5)
    return store.db.execute("SELECT id FROM entries WHERE guid = ?", [guid]).fetchone()[0]


def ids(results: list[dict]) -> set[int]:
    return {result["id"] for result in results}


@pytest.fixture
def china(store: Store) -> dict[str, int]:
    stories = {
        "to_china": put(store, "ukrpravda", "a", "Делегація поїхала до Китаю", language="uk"),
        "with_china": put(store, "ukrpravda", "b", "Зустріч з Китаєм у Женеві",
                          "Переговори тривали годину.", language="uk"),
        "china": put(store, "ukrpravda", "c", "Китай закупив більше нафти", language="uk"),
        "english": put(store, "kyivindependent", "d", "Russia's ally China sends drones",
                       "Batteries and engines crossed the border."),
        "weather": put(store, "kyivindependent", "e", "Weather in Kyiv", "Sunny, no news."),
    }
    assert index_pending(store) == len(stories)
    return stories


def test_a_ukrainian_word_finds_its_inflected_forms_both_ways(store, china):
    every_form = {china["to_china"], china["with_china"], china["china"]}
    assert ids(search(store, "Китай")) == every_form
    assert ids(search(store, "Китаю")) == every_form
    assert ids(search(store, "китаєм")) == every_form


def test_hits_point_at_the_inflected_word_in_the_original_text(store, china):
    found = next(r for r in search(store, "Китай") if r["id"] == china["with_china"])
    hit, = found["hits"]
    assert (hit["field"], hit["start"], hit["end"]) == ("title", 10, 16)
    assert "Зустріч з Китаєм у Женеві"[hit["start"]:hit["end"]] == "Китаєм"
    assert found["snippet"] == "Зустріч з [[Китаєм]] у Женеві"


def test_english_plurals_and_possessives(store, china):
    assert ids(search(store, "russia")) == {china["english"]}  # Russia's
    assert ids(search(store, "drone")) == {china["english"]}  # drones
    assert ids(search(store, "battery")) == {china["english"]}  # Batteries
    assert ids(search(store, "engine")) == {china["english"]}
    assert search(store, "nafta") == []


def test_phrases_keep_their_word_order(store, china):
    assert ids(search(store, '"ally China"')) == {china["english"]}
    assert search(store, '"China ally"') == []
    assert ids(search(store, '"з Китаєм"')) == {china["with_china"]}  # a phrase with a form


def test_operators_and_prefixes(store, china):
    assert ids(search(store, "Китай NOT Женева")) == {china["to_china"], china["china"]}
    assert ids(search(store, "Женева OR weather")) == {china["with_china"], china["weather"]}
    assert ids(search(store, "нафт*")) == {china["china"]}
    assert ids(search(store, "title:batteries")) == set()  # it is in the summary
    assert ids(search(store, "summary:batteries")) == {china["english"]}


def test_feed_since_and_limit_filters(store, china):
    later = put(store, "ukrpravda", "f", "Китай і Росія", language="uk", at=T0 + timedelta(days=2))
    index_pending(store)
    assert ids(search(store, "Китай", since=T0 + timedelta(days=1))) == {later}
    assert ids(search(store, "Китай", feed="kyivindependent")) == set()
    assert ids(search(store, "China", feed="kyivindependent")) == {china["english"]}
    newest_first = search(store, "Китай", limit=2)
    assert [r["id"] for r in newest_first][0] == later and len(newest_first) == 2


def test_the_index_is_filled_lazily_and_idempotently(store):
    story = put(store, "ukrpravda", "a", "Делегація поїхала до Китаю", language="uk")
    assert store.db.execute("SELECT COUNT(*) FROM search_index").fetchone()[0] == 0  # not on ingest
    assert search(store, "Китай") == []  # the search reads the index, not the entries
    assert pending_count(store) == 1
    assert index_pending(store) == 1
    assert index_pending(store) == 0
    assert store.db.execute("SELECT COUNT(*) FROM search_index").fetchone()[0] == 1
    assert ids(search(store, "Китай")) == {story}


def test_index_pending_honours_its_limit(store):
    for n in range(5):
        put(store, "kyivindependent", f"s{n}", f"Story number {n}")
    assert index_pending(store, limit=2) == 2
    assert pending_count(store) == 3
    assert index_pending(store) == 3


def test_an_updated_story_is_indexed_again(store):
    story = put(store, "kyivindependent", "u", "Talks in Geneva")
    index_pending(store)
    assert ids(search(store, "Geneva")) == {story}
    put(store, "kyivindependent", "u", "Talks moved to Istanbul")  # same guid: a new version
    assert pending_count(store) == 1
    assert index_pending(store) == 1
    assert search(store, "Geneva") == []
    assert ids(search(store, "Istanbul")) == {story}


def test_a_pruned_story_leaves_the_index(store):
    put(store, "kyivindependent", "old", "Old story about Geneva")
    index_pending(store)
    assert store.prune(T0 + timedelta(days=200), 90 * 86400) == 1
    assert store.db.execute("SELECT COUNT(*) FROM search_index").fetchone()[0] == 0
    assert store.db.execute("SELECT COUNT(*) FROM search_indexed").fetchone()[0] == 0


def test_entities_and_groups_of_the_watch(store, china):
    watch = parse_watch_text('[entity.china]\naliases = ["China", "Китай", "Пекін"]\n'
                             '[group.oil]\nterms = ["нафта", "oil"]\n', Path("watch.toml"))
    assert ids(search(store, "@china", watch=watch)) == {
        china["to_china"], china["with_china"], china["china"], china["english"]}
    assert ids(search(store, "@china #oil", watch=watch)) == {china["china"]}
    with pytest.raises(UsageError, match="no entity @russia"):
        search(store, "@russia", watch=watch)


@pytest.mark.parametrize("query, message", [
    ('"unclosed', "never closed"),
    ("NOT China", "only NOT"),
    ("a*", "at least 2 letters"),
])
def test_a_bad_query_is_a_usage_error_that_points_at_the_spot(store, query, message):
    with pytest.raises(UsageError, match=message) as error:
        search(store, query)
    assert error.value.exit_code == 2


# --------------------------------------------------------------------------
# stored matches and muting
# --------------------------------------------------------------------------


def _match(rule: str, title: str, word: str) -> Match:
    start = title.index(word)
    return Match(rule=rule, score=3.0, severity="warning", tags=("t",),
                 hits=(Hit("title", start, start + len(word), word),),
                 snippet=title.replace(word, f"[[{word}]]"))


def _alert(store: Store, entry_id: int, rule: str, status: str) -> None:
    match_id = store.db.execute("SELECT id FROM matches WHERE entry_id = ? AND rule = ?",
                                [entry_id, rule]).fetchone()[0]
    payload = json.dumps({"rule": rule, "severity": "warning", "score": 1.0, "title": "t",
                          "url": None, "feed": "f", "published": None, "snippet": ""})
    with store.transaction():
        alert_id = store.db.execute(
            "INSERT INTO alerts (kind, entry_id, match_id, rule, destination, status, delivery, due_at, "
            "created, payload) VALUES ('match', ?, ?, ?, ?, ?, 'immediate', ?, ?, ?) RETURNING id",
            [entry_id, match_id, rule, f"dest-{status}", status, "2026-11-20T09:00:00Z",
             "2026-11-20T09:00:00Z", payload]).fetchone()[0]
        store.db.execute("INSERT INTO alert_rules (alert_id, match_id, rule) VALUES (?, ?, ?)",
                         [alert_id, match_id, rule])


def test_mute_marks_matches_and_stops_their_unsent_alerts(store):
    title = "China buys Russian oil"
    story = put(store, "kyivindependent", "m", title,
                matches=(_match("oil", title, "oil"), _match("china", title, "China")))
    for status in ("pending", "failed", "sent"):
        _alert(store, story, "oil", status)
    _alert(store, story, "china", "pending")

    done = mute(store, story, rule="oil", reason="about cooking oil", now=T0 + timedelta(hours=1))
    assert done == {"id": story, "muted": ["oil"], "already_muted": [], "alerts_muted": 2}
    statuses = dict(store.db.execute("SELECT destination, status FROM alerts WHERE rule = 'oil'").fetchall())
    assert statuses == {"dest-pending": "muted", "dest-failed": "muted", "dest-sent": "sent"}
    assert store.db.execute("SELECT status FROM alerts WHERE rule = 'china'").fetchone()[0] == "pending"

    muted, = muted_matches(store)
    assert (muted["id"], muted["rule"], muted["mute_reason"]) == (story, "oil", "about cooking oil")
    assert muted_matches(store, since=T0 + timedelta(days=1)) == []
    by_rule = {m["rule"]: m for m in list_matches(store)}
    assert by_rule["oil"]["muted"] and not by_rule["china"]["muted"]
    assert by_rule["china"]["hits"] == [{"field": "title", "start": 0, "end": 5, "term": "China"}]

    again = mute(store, story, rule=None, reason=None, now=T0 + timedelta(hours=2))
    assert again["muted"] == ["china"] and again["already_muted"] == ["oil"]
    assert store.db.execute("SELECT mute_reason FROM matches WHERE rule = 'oil'").fetchone()[0] == \
        "about cooking oil"


def test_mute_refuses_unknown_stories_and_rules(store):
    title = "China buys Russian oil"
    story = put(store, "kyivindependent", "m", title, matches=(_match("oil", title, "oil"),))
    plain = put(store, "kyivindependent", "n", "Weather")
    with pytest.raises(MonitorError, match="no story with ID 999"):
        mute(store, 999, rule=None, reason=None, now=T0)
    with pytest.raises(MonitorError, match="has no matches"):
        mute(store, plain, rule=None, reason=None, now=T0)
    with pytest.raises(MonitorError, match=r"no match of rule 'gas' \(its rules: oil\)"):
        mute(store, story, rule="gas", reason=None, now=T0)
    assert muted_matches(store) == []


def test_mute_alerts_runs_only_inside_a_transaction(store):
    with pytest.raises(RuntimeError, match="inside a store transaction"):
        mute_alerts(store, 1, T0)


def test_get_story_has_matches_alerts_and_knows_stale_offsets(store):
    title = "China buys Russian oil"
    story = put(store, "kyivindependent", "m", title, matches=(_match("oil", title, "oil"),))
    _alert(store, story, "oil", "sent")
    shown = get_story(store, story)
    assert shown["title"] == title and shown["feed"] == "kyivindependent"
    assert [m["rule"] for m in shown["matches"]] == ["oil"] and shown["matches"][0]["current"]
    assert [(a["destination"], a["status"]) for a in shown["alerts"]] == [("dest-sent", "sent")]
    put(store, "kyivindependent", "m", "Oil deal: China buys Russian oil")  # offsets move
    assert not get_story(store, story)["matches"][0]["current"]
    assert get_story(store, 12345) is None


def test_a_database_from_before_search_is_upgraded_and_indexed(tmp_path):
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="0003_search_mute")
    old.execute("INSERT INTO feeds (name, url, config_url, created) VALUES ('f', 'http://x', 'http://x', "
                "'2026-11-01T00:00:00Z')")
    old.execute("INSERT INTO entries (feed_id, guid, title, content_hash, first_seen, last_seen) "
                "VALUES (1, 'g', 'Делегація поїхала до Китаю', 'h', '2026-11-01T00:00:00Z', "
                "'2026-11-01T00:00:00Z')")
    old.conn.commit()
    old.close()
    upgraded = Store.open(path)
    try:
        assert index_pending(upgraded) == 1
        assert ids(search(upgraded, "Китай")) == {1}
    finally:
        upgraded.close()
