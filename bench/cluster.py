"""Cluster benchmark: `monitor worker` processes on one PostgreSQL database against
`monitor run --once` on SQLite, on the same local feeds, each feed polled once.

    python bench/cluster.py                        # 5,000 feeds; 1, 2 and 4 workers; then SQLite
    python bench/cluster.py --feeds 2000 --workers 1,2 --concurrency 8

The feeds are copies of the real fixture feeds (bench/compare.py: `bodies`), all new
(a first poll), served with ETags by bench/localserver.py's asyncio server in a
process of its own. Every feed has a 24 h interval, so each is polled once. Each
cluster run gets a new database on the machine's PostgreSQL (the tests' server:
`MONITOR_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/test),
dropped afterwards, and a new state folder (a cold watch cache, as SQLite's run).
The workers run from this interpreter (`python -m monitor`), so the postgres
extra must be installed in it.

Measured per run:
- wall time from starting the processes until every feed has a fetch_log row,
  and the span from the first poll to the last (without start-up);
- polls/s and stories/s over that span;
- the CPU of the workers' (or run --once's) process trees, parser processes included,
  read from /proc;
- PostgreSQL per poll: `active_time` and `xact_commit` deltas of pg_stat_database
  (pg_stat_statements is not preloaded on this server), the CPU of the database's
  backends (from /proc, sampled), and, sampled every 0.1 s from pg_locks, how
  often the store's write lock (one advisory lock per write transaction) is held
  and how many sessions wait for it. The lock bound is polls/s divided by the
  fraction of time the lock is held: the polls/s at which it would be held always.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.compare import bodies, serve  # noqa: E402
from monitor.store.postgres import WRITE_LOCK  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ADMIN_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLE_EVERY = 0.1  # seconds between looks at pg_stat_activity and pg_locks
TICKS = os.sysconf("SC_CLK_TCK")
STATS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_inserted", "tup_updated", "active_time")


@dataclass
class Run:
    """One configuration's figures (times in seconds unless named _ms)."""

    mode: str
    processes: int
    feeds: int
    polls: int = 0
    stories: int = 0
    wall: float = 0.0
    span: float = 0.0
    worker_cpu: float = 0.0
    pg: dict[str, float] = field(default_factory=dict)
    backend_cpu: float = 0.0
    lock_held: float = 0.0  # fraction of samples with the write lock held
    lock_waiting: float = 0.0  # sessions waiting for it, on average
    active_sessions: float = 0.0  # sessions running a statement (lock waits aside), on average

    @property
    def polls_per_s(self) -> float:
        return self.polls / self.span if self.span else 0.0

    @property
    def stories_per_s(self) -> float:
        return self.stories / self.span if self.span else 0.0

    def per_poll_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.polls if self.polls else 0.0


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def config_folder(folder: Path, port: int, feeds: int, per_process_fetches: int) -> Path:
    """The shipped watch and alerts (no destinations), every feed on a 24 h interval."""
    config = folder / "config"
    config.mkdir(parents=True)
    for name in ("watch.toml", "alerts.toml"):
        (config / name).write_bytes((ROOT / "config" / name).read_bytes())
    (config / "monitor.toml").write_text(
        'timezone = "UTC"\nlog_level = "warning"\n[fetch]\n'
        f'per_host_limit = {per_process_fetches}\nglobal_limit = {2 * per_process_fetches}\n')
    (config / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "bench-{i}"\nurl = "http://127.0.0.1:{port}/feed/{i}.xml"\ninterval = "24h"\n\n'
        for i in range(feeds)))
    return config


def cpu_of(pid: int) -> float | None:
    """User and system CPU of PID so far, from /proc (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """Looks at the database's sessions and the write lock every SAMPLE_EVERY seconds."""

    QUERY = f"""
        SELECT (SELECT coalesce(json_agg(json_build_object('pid', pid, 'state', state,
                                                           'wait', wait_event_type || ':' || wait_event)), '[]')
                FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()),
               (SELECT count(*) FILTER (WHERE granted) FROM pg_locks
                WHERE locktype = 'advisory' AND objid = {WRITE_LOCK & 0xFFFFFFFF} AND classid = {WRITE_LOCK >> 32}
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())),
               (SELECT count(*) FILTER (WHERE NOT granted) FROM pg_locks
                WHERE locktype = 'advisory' AND objid = {WRITE_LOCK & 0xFFFFFFFF} AND classid = {WRITE_LOCK >> 32}
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
    """

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.samples = self.held = self.waiting = self.active = 0
        self.own_time = 0.0  # seconds spent in its own queries, taken off the database's active time
        self.backend_cpu: dict[int, float] = {}  # pid -> CPU at the last sample
        self.backend_cpu_first: dict[int, float] = {}  # pid -> CPU at the first sample that saw it

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopping.wait(SAMPLE_EVERY):
                asked = time.perf_counter()
                sessions, held, waiting = conn.execute(self.QUERY).fetchone()
                self.own_time += time.perf_counter() - asked
                self.samples += 1
                self.held += held > 0
                self.waiting += waiting
                self.active += sum(1 for s in sessions if s["state"] == "active" and s["wait"] != "Lock:advisory")
                for session in sessions:
                    cpu = cpu_of(session["pid"])
                    if cpu is not None:
                        self.backend_cpu_first.setdefault(session["pid"], cpu)
                        self.backend_cpu[session["pid"]] = cpu

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def pg_stats(url: str) -> dict[str, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(f"SELECT {', '.join(STATS)} FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
    return dict(zip(STATS, (float(value or 0) for value in row), strict=True))


def scalar(url: str, sql: str) -> object:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def polls(url: str) -> int:
    """Polls done so far (none while the first worker creates the tables)."""
    if scalar(url, "SELECT to_regclass('fetch_log')") is None:
        return 0
    return int(scalar(url, "SELECT count(*) FROM fetch_log"))


def tree_cpu(roots: list[int]) -> float:
    """CPU so far of ROOTS and every process below them (a worker's forkserver and parser processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu_of(pid) or 0.0 for pid in tree)


def span_of(first: str, last: str) -> float:
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def measure_round(url: str, procs: list[subprocess.Popen], result: Run, polls_wanted: int, log: Path,
                  timeout: float) -> None:
    """Wait until fetch_log has POLLS_WANTED rows, filling RESULT with what the round took."""
    roots = [proc.pid for proc in procs]
    before, cpu_before, polls_before = pg_stats(url), tree_cpu(roots), polls(url)
    sampler = Sampler(url)
    started = time.perf_counter()
    sampler.start()
    checks, check_time = 0, 0.0
    try:
        while True:
            asked = time.perf_counter()
            done = polls(url)
            checks, check_time = checks + 2, check_time + time.perf_counter() - asked
            if done >= polls_wanted:
                break
            if any(proc.poll() is not None for proc in procs):
                raise SystemExit(f"a worker stopped: {log.read_text()[-3000:]}")
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"only {polls(url)} of {polls_wanted} polls done after {timeout:.0f} s")
            time.sleep(0.25)
        result.wall = time.perf_counter() - started
    finally:
        sampler.stop()
    result.worker_cpu = tree_cpu(roots) - cpu_before
    after = pg_stats(url)  # open sessions' figures lag by up to a second; rounds last minutes
    result.pg = {key: after[key] - before[key] for key in STATS}
    # The bench's own looks (each a transaction or two) are not the cluster's work.
    result.pg["xact_commit"] -= sampler.samples + checks
    result.pg["active_time"] -= 1000 * (sampler.own_time + check_time)
    result.backend_cpu = sum(sampler.backend_cpu.values()) - sum(sampler.backend_cpu_first.values())
    samples = max(sampler.samples, 1)
    result.lock_held = sampler.held / samples
    result.lock_waiting = sampler.waiting / samples
    result.active_sessions = sampler.active / samples
    result.polls = polls_wanted - polls_before
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        first, last = conn.execute("SELECT min(at), max(at) FROM (SELECT at FROM fetch_log ORDER BY id "
                                   "OFFSET %s) AS round", [polls_before]).fetchone()
    result.span = span_of(str(first), str(last))


def run_cluster(workers: int, concurrency: int, port: int, feeds: int, timeout: float,
                repoll: bool) -> list[Run]:
    """WORKERS `monitor worker` processes on a new database until every feed is polled once
    (and, with REPOLL, once more: every feed made due again, every answer a 304)."""
    name = f"monitor_bench_{uuid.uuid4().hex[:12]}"
    url = database_url(name)
    admin(f'CREATE DATABASE "{name}"')
    first = Run("worker", workers, feeds)
    runs = [first]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = config_folder(folder, port, feeds, concurrency)
            env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
                   "STATE_DIRECTORY": str(folder / "state")}
            log = folder / "worker-0.log"
            started = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--db", url,
                                       "worker", "--concurrency", str(concurrency), "--name", f"bench-{n}"],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=(folder / f"worker-{n}.log").open("w"))
                     for n in range(workers)]
            try:
                measure_round(url, procs, first, feeds, log, timeout)
                first.wall = time.perf_counter() - started  # from the processes' start
                first.stories = int(scalar(url, "SELECT count(*) FROM entries"))
                if repoll:
                    again = Run("worker, all 304", workers, feeds)
                    admin_sql(url, "UPDATE feeds SET next_poll = NULL")
                    measure_round(url, procs, again, 2 * feeds, log, timeout)
                    again.stories = int(scalar(url, "SELECT count(*) FROM entries")) - first.stories
                    runs.append(again)
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=180)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return runs


def admin_sql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def run_sqlite(port: int, feeds: int, fetches: int) -> Run:
    """`monitor run --once` on a new SQLite file: one process (and its parser processes)."""
    result = Run("run --once (SQLite)", 1, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = config_folder(folder, port, feeds, fetches)
        db = folder / "state" / "monitor.db"
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        started = time.perf_counter()
        with (folder / "run.log").open("w+") as log:
            proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--db", str(db),
                                     "run", "--once"], env=env, stdout=log, stderr=log)
            while proc.poll() is None:  # the tree's CPU, parser processes included, until it ends
                result.worker_cpu = max(result.worker_cpu, tree_cpu([proc.pid]))
                time.sleep(0.2)
            result.wall = time.perf_counter() - started
            if proc.returncode != 0:
                log.seek(0)
                raise SystemExit(f"monitor run --once failed ({proc.returncode}): {log.read()[-3000:]}")
        conn = sqlite3.connect(db)
        try:
            result.polls = conn.execute("SELECT count(*) FROM fetch_log").fetchone()[0]
            result.stories = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
            first, last = conn.execute("SELECT min(at), max(at) FROM fetch_log").fetchone()
        finally:
            conn.close()
        result.span = span_of(first, last)
    return result


def print_table(runs: list[Run]) -> None:
    print("| mode | processes | wall to all polled | first→last poll | polls/s | stories/s | worker CPU/poll "
          "| PG active/poll | PG backend CPU/poll | PG commits/poll | write lock held | waiting for it | lock bound |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        if run.mode.startswith("worker"):
            pg = (f"{run.pg['active_time'] / run.polls:.1f} ms | {run.per_poll_ms(run.backend_cpu):.1f} ms | "
                  f"{run.pg['xact_commit'] / run.polls:.1f} | {100 * run.lock_held:.0f} % | "
                  f"{run.lock_waiting:.2f} | "
                  f"{run.polls_per_s / run.lock_held if run.lock_held else float('inf'):.0f} polls/s")
        else:
            pg = "– | – | – | – | – | –"
        print(f"| {run.mode} | {run.processes} | {run.wall:.1f} s | {run.span:.1f} s | {run.polls_per_s:.1f} | "
              f"{run.stories_per_s:.0f} | {run.per_poll_ms(run.worker_cpu):.1f} ms | {pg} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to run, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once per worker process")
    parser.add_argument("--repoll", action="store_true",
                        help="then make every feed due again and measure that round too (all 304)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the `run --once` comparison")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    args = parser.parse_args()

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, queue), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    total = sum(len(body) for body in bodies(args.feeds).values())
    print(f"feeds={args.feeds} ({total / 1e6:.0f} MB) concurrency={args.concurrency} per worker; "
          f"load before {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    runs: list[Run] = []
    try:
        for workers in (int(n) for n in args.workers.split(",")):
            runs.extend(run_cluster(workers, args.concurrency, port, args.feeds, args.timeout, args.repoll))
            print(f"{workers} worker(s): " + ", ".join(f"{run.mode} {run.wall:.1f} s" for run in runs[-2:]
                                                     if run.processes == workers)
                  + f", load {os.getloadavg()[0]:.2f}", flush=True)
        if not args.no_sqlite:
            runs.append(run_sqlite(port, args.feeds, args.concurrency))
            print(f"run --once: {runs[-1].wall:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        server.terminate()
    print_table(runs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps([asdict(run) for run in runs], indent=1))


if __name__ == "__main__":
    main()
