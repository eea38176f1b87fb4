"""Several `monitor worker` processes on one PostgreSQL database, as real subprocesses:
300 local feeds, new stories published twice while they run, one worker SIGKILLed
mid-run and another started. Every story is stored once, every feed keeps its
interval, every matched story reaches the webhook once (a marked possible duplicate
aside), no feed has two poll jobs deferred at once, and the outbox ends empty."""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.runtime.worker import DISPATCH_EVERY, RECOVER_EVERY, STALLED_AFTER
from monitor.store.postgres import connect
from support.daemon import WorkerProcess, wait_until
from support.feeds import Item, rss
from support.feedserver import static
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor

FEEDS = 300
INTERVAL = 20  # seconds between polls of one feed
MATCHING = range(0, FEEDS, 10)  # these feeds' stories match the watch
REPORT = re.compile(r"Russia, report (\d+-\d+)")  # a matched story's guid, as its alert shows it


def story(feed: int, round_: int) -> Item:
    title = (f"Chinese drone parts reach Russia, report {feed}-{round_}" if feed in MATCHING
             else f"Kyiv weather, day {feed}-{round_}")
    return Item(f"{feed}-{round_}", title, published=datetime.now(UTC),
                link=f"https://news.example.org/{feed}/{round_}")


def publish(feed_server, round_: int) -> None:
    for feed in range(FEEDS):
        body = rss([story(feed, r) for r in range(round_ + 1)], title=f"Outlet {feed}")
        feed_server.routes[f"/f{feed}.xml"] = static(body, last_modified=False)


def rows(url: str, sql: str, *args) -> list[tuple]:
    db = connect(url)
    try:
        return [tuple(row) for row in db.execute(sql, list(args)).fetchall()]
    finally:
        db.close()


@pytest.fixture
def cluster_env(env: dict[str, str], feed_server, webhook, postgres_url: str) -> dict[str, str]:
    env = {**env, "MONITOR_DB": postgres_url}
    config = Path(env["MONITOR_CONFIG"])
    monitor("init", str(config), "--no-feeds", env=env, check=True)
    (config / "watch.toml").write_text(CHINA_DRONES_WATCH, encoding="utf-8")
    (config / "alerts.toml").write_text(
        '[settings]\nrate_limit = 0\n\n[[destination]]\nname = "desk"\n'
        f'url = "json://127.0.0.1:{webhook.port}/hook"\n', encoding="utf-8")
    (config / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "outlet-{i}"\nurl = "{feed_server.url(f"/f{i}.xml")}"\n'
        f'interval = "{INTERVAL}s"\n\n' for i in range(FEEDS)), encoding="utf-8")
    publish(feed_server, 0)
    return env


def test_workers_share_the_feeds_survive_a_kill_and_do_everything_once(cluster_env, feed_server, webhook,
                                                                       postgres_url: str) -> None:
    env = cluster_env
    workers = [WorkerProcess(env, "--name", f"w{n}").start() for n in (1, 2, 3)]
    def stored() -> int:  # stories stored so far (none while the first worker creates the tables)
        if rows(postgres_url, "SELECT to_regclass('entries')")[0][0] is None:
            return 0
        return rows(postgres_url, "SELECT count(*) FROM entries")[0][0]

    try:
        assert wait_until(lambda: stored() == FEEDS, 120), workers[0].output()
        view = json.loads(monitor("status", "--json", env=env).stdout)
        assert view["healthy"] and view["cluster"]["workers_alive"] == 3, view
        assert len({node["config_version"] for node in view["cluster"]["workers"]}) == 1
        publish(feed_server, 1)
        assert wait_until(lambda: stored() >= FEEDS + FEEDS // 4, 120)
        workers[1].kill()  # mid-run: some of its polls and sends never finish
        workers.append(WorkerProcess(env, "--name", "w4").start())
        assert wait_until(lambda: stored() == 2 * FEEDS, 180)
        publish(feed_server, 2)
        assert wait_until(lambda: stored() == 3 * FEEDS, 180)
        matched = 3 * len(MATCHING)
        assert wait_until(lambda: rows(postgres_url, "SELECT count(*) FROM alerts WHERE status = 'sent'")[0][0]
                          == matched, 120), rows(postgres_url, "SELECT status, count(*) FROM alerts GROUP BY 1")
        def alive() -> dict[str, bool]:  # the killed worker falls silent 30 s after its last heartbeat
            view = json.loads(monitor("status", "--json", env=env).stdout)
            assert view["healthy"], view
            return {node["name"]: node["alive"] for node in view["cluster"]["workers"]}

        assert wait_until(lambda: alive() == {"w1": True, "w2": False, "w3": True, "w4": True}, 60, every=2)
        assert "workers: 3 alive of 4" in monitor("status", env=env).stdout
    finally:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.signal(signal.SIGTERM)  # all at once, once each
        exits = [worker.proc.wait(timeout=60) for worker in workers if worker is not workers[1]]
    assert exits == [0, 0, 0]

    # every story once, by its unique key and by count
    guids = rows(postgres_url, "SELECT guid FROM entries")
    assert sorted(g for (g,) in guids) == sorted(f"{f}-{r}" for f in range(FEEDS) for r in range(3))

    # every matched story reached the webhook once; a second copy only where the outbox marked it
    posted = Counter(guid for post in webhook.posts for guid in set(REPORT.findall(json.dumps(post))))
    marked = {guid for (guid,) in rows(postgres_url, "SELECT e.guid FROM alerts a JOIN entries e ON e.id = a.entry_id "
                                                     "WHERE a.possible_duplicate = 1")}
    assert set(posted) == {f"{f}-{r}" for f in MATCHING for r in range(3)}
    assert {guid for guid, count in posted.items() if count > 1} <= marked
    assert max(posted.values()) <= 2
    assert rows(postgres_url, "SELECT count(*) FROM alerts WHERE status NOT IN ('sent')")[0][0] == 0

    # every feed kept its interval: the killed worker's polls came back after its jobs were recovered
    late = INTERVAL + DISPATCH_EVERY + STALLED_AFTER + RECOVER_EVERY + 10
    gaps = _poll_gaps(postgres_url)
    assert max(gaps.values()) <= late, sorted(gaps.items(), key=lambda kv: -kv[1])[:5]
    on_time = [name for name, gap in gaps.items() if gap <= INTERVAL + 2 * DISPATCH_EVERY + 5]
    assert len(on_time) >= 0.9 * FEEDS

    # no feed ever had two poll jobs deferred within one interval
    deferred: dict[str, list[datetime]] = {}
    for lock, at in rows(postgres_url, "SELECT j.lock, e.at FROM procrastinate_events e JOIN procrastinate_jobs j "
                                       "ON j.id = e.job_id WHERE e.type = 'deferred' "
                                       "AND j.task_name = 'monitor.poll_feed'"):
        deferred.setdefault(lock, []).append(at)
    closest = min(later - earlier for times in deferred.values()
                  for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False))
    assert closest >= timedelta(seconds=INTERVAL / 2)


def _poll_gaps(url: str) -> dict[str, float]:
    """Each feed's longest time between two polls, in seconds."""
    times: dict[str, list[datetime]] = {}
    for name, at in rows(url, "SELECT f.name, l.at FROM fetch_log l JOIN feeds f ON f.id = l.feed_id"):
        times.setdefault(name, []).append(datetime.fromisoformat(at))
    return {name: max(((later - earlier).total_seconds() for earlier, later in zip(sorted(ts), sorted(ts)[1:],
                                                                                       strict=False)), default=0.0)
            for name, ts in times.items()}
