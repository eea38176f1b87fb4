"""Crash run: SIGKILL `monitor run` at random moments, take its mail server, disk and database away.

    python -m bench.chaos.crash --kills 30 --seed 7
    python -m bench.chaos.crash --scenarios smtp_down,disk_full,db_locked

Every scenario starts from an empty database, with `--feeds` healthy local feeds
that gain one story per poll (one story in `--alert-every` matches the watch)
and a real SMTP server (aiosmtpd) as the alert destination. Each is a small
function registered by name:

  kills      start the daemon, SIGKILL it a seeded random time (0 to --max-delay s)
             after it logged "daemon started", while it polls, matches and sends;
             repeat --kills times.
  smtp_down  stop the SMTP server for --smtp-down seconds while alerts keep coming.
  disk_full  the database on a small tmpfs (needs root to mount), filled up to the
             last byte for --disk-full seconds.
  db_locked  another process holds BEGIN EXCLUSIVE on the database for --db-locked s.

Each ends the same way: the feed server stops producing stories, the daemon
runs until the outbox is empty, then gets SIGTERM. Checks: every alert that
should have been sent arrived (lost = 0); duplicates at most one per kill
(0 elsewhere); every story served in a successful answer is stored once;
no alert dead; the daemon survived each stretch and exits 0 on SIGTERM;
PRAGMA integrity_check is ok. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos.harness import (
    SEND_RATE,
    Check,
    Daemon,
    MailSink,
    Workspace,
    db_rows,
    integrity,
    monitor,
    processes_using,
    table,
    wait_until,
)
from bench.chaos.hostile import DEFAULT_HOSTS, OK, HostileServer, Plan

FETCH = {"connect_timeout": "2s", "read_timeout": "2s", "deadline": "4s"}
# rate_limit 0: no flood guard, so that every matching story is one immediate mail to count.
ALERT_SETTINGS = {"retry_base": "1s", "retry_cap": "2s", "send_timeout": "10s", "rate_limit": 0}


@dataclass(frozen=True)
class CrashSettings:
    kills: int = 30
    seed: int = 7
    feeds: int = 12
    interval: float = 2.0  # seconds between two polls of a feed
    alert_every: int = 6
    max_delay: float = 4.0  # a kill lands 0..max_delay s after "daemon started"
    smtp_down: float = 20.0  # seconds
    disk_full: float = 15.0
    db_locked: float = 10.0
    scenarios: tuple[str, ...] = ("kills", "smtp_down", "disk_full", "db_locked")

    def command(self) -> str:
        return (f"python -m bench.chaos.crash --kills {self.kills} --seed {self.seed} "
                f"--feeds {self.feeds} --interval {self.interval:g} --alert-every {self.alert_every} "
                f"--max-delay {self.max_delay:g} --smtp-down {self.smtp_down:g} "
                f"--disk-full {self.disk_full:g} --db-locked {self.db_locked:g} "
                f"--scenarios {','.join(self.scenarios)}")


@dataclass
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    skipped: str | None = None  # why the scenario could not run here

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


# --------------------------------------------------------------------------
# the rig every scenario uses
# --------------------------------------------------------------------------


class Rig:
    """Feed server, mail sink, config folder and daemon of one scenario."""

    def __init__(self, settings: CrashSettings, work: Path, db: Path | None = None) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.server = HostileServer(DEFAULT_HOSTS[:4], seed=settings.seed,
                                    plan=Plan(settings.seed, 0.0), alert_every=settings.alert_every)
        self.sink = MailSink()
        self.workspace = Workspace(work, db=db)
        self.names = [f"k{index:02d}" for index in range(settings.feeds)]
        self.daemon = Daemon(self.workspace.env, work / "daemon.log")

    def __enter__(self) -> Rig:
        self.server.start()
        self.sink.start()
        self.workspace.write(
            [(name, self.server.feed_url(name, host=i)) for i, name in enumerate(self.names)],
            interval=f"{self.settings.interval:g}s", smtp_url=self.sink.url(), fetch=FETCH,
            alert_settings=ALERT_SETTINGS)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.daemon.proc is not None and self.daemon.alive():
            self.daemon.kill()
        self.reap()
        self.sink.stop()
        self.server.stop()

    def reap(self) -> int:
        """Processes of this rig's dead daemons (parser workers, their forkserver) still alive
        5 s after it died: count them, then end them."""
        def left() -> list[int]:
            return [pid for pid in processes_using(self.db) if not self.daemon.alive() or pid != self.daemon.pid]

        wait_until(lambda: not left(), 5.0)
        stragglers = left()
        for pid in stragglers:
            os.kill(pid, signal.SIGKILL)
        return len(stragglers)

    @property
    def db(self) -> Path:
        return self.workspace.db

    def start(self, timeout: float = 60) -> bool:
        """Start the daemon; True once it logged that it started."""
        self.daemon.start()
        return self.daemon.wait_for_line("daemon started", timeout)

    def expected_alerts(self) -> set[str]:
        return {ref for s in self.server.served() if OK in s.outcomes for ref in s.alerts}

    def stored_stories(self) -> int:
        return db_rows(self.db, "SELECT COUNT(*) FROM entries")[0][0]

    def outbox_open(self) -> int:
        return db_rows(self.db, "SELECT COUNT(*) FROM alerts WHERE status IN ('pending', 'failed')")[0][0]

    def wait_for_activity(self, timeout: float = 60) -> bool:
        """Stories stored and at least one alert delivered: the daemon is in its stride."""
        return wait_until(lambda: self.daemon.alive() and self.sink.mails
                          and self.stored_stories() > 0, timeout, every=0.3)

    def log_lines_matching(self, *needles: str) -> list[str]:
        return [line for line in self.daemon.lines(since_start=False)
                if any(needle in line for needle in needles)]

    def finish(self, result: ScenarioResult, *, allowed_duplicates: int) -> None:
        """No new stories; run until every alert is out; SIGTERM; check what arrived and what is stored."""
        self.server.freeze()
        if not self.daemon.alive() and not self.start():
            result.check("daemon restarts for the final drain", False, "\n".join(self.daemon.lines()[-3:]))
        expected = self.expected_alerts()
        budget = 60 + len(expected) / SEND_RATE
        drained = wait_until(lambda: not self.daemon.alive() or (
            expected <= set(self.sink.counts()) and self.outbox_open() == 0), budget, every=0.5)
        alive = self.daemon.alive()
        code = self.daemon.stop()
        result.check("outbox drained after the stretch", drained and alive,
                     f"{self.outbox_open()} alerts still pending or failed")
        result.check("exit 0 on SIGTERM", code == 0, f"exit code {code}")
        counts = self.sink.counts()
        lost = sorted(expected - counts.keys())
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        unexpected = sorted(counts.keys() - expected)
        result.check("no alert lost", not lost, f"{len(expected)} expected, lost {len(lost)}"
                     + (f": {lost[:5]}" if lost else ""))
        result.check(f"duplicates <= {allowed_duplicates}", duplicates <= allowed_duplicates,
                     f"{duplicates} duplicate mails")
        result.check("no unexpected alert", not unexpected, f"{len(unexpected)}: {unexpected[:3]}")
        dead = db_rows(self.db, "SELECT COUNT(*) FROM alerts WHERE status = 'dead'")[0][0]
        result.check("no alert dead", dead == 0, f"{dead} dead")
        served = {(s.feed, g) for s in self.server.served() if OK in s.outcomes for g in s.stories}
        stored = set(db_rows(self.db, "SELECT f.name, e.guid FROM entries e JOIN feeds f ON f.id = e.feed_id"))
        missing = served - stored
        result.check("every served story stored once", not missing and stored <= served,
                     f"{len(served)} served, {len(stored)} stored, missing {len(missing)}")
        check = integrity(self.db)
        result.check("integrity_check", check == "ok", check)
        result.figures.update({"alerts expected": len(expected), "mails": len(self.sink.mails),
                               "lost": len(lost), "duplicates": duplicates,
                               "stories stored": len(stored)})


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------

Scenario = Callable[[CrashSettings, Path], ScenarioResult]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function
    return register


@scenario("kills")
def kills(settings: CrashSettings, work: Path) -> ScenarioResult:
    """SIGKILL at seeded random moments, restart each time."""
    result = ScenarioResult("kills")
    rng = random.Random(f"crash:{settings.seed}")
    moments, mails_at_kill, orphans = [], [], 0
    with Rig(settings, work) as rig:
        for _ in range(settings.kills):
            if not rig.start():
                result.check("daemon starts after a kill", False, "\n".join(rig.daemon.lines()[-5:]))
                break
            moment = rng.uniform(0.0, settings.max_delay)
            time.sleep(moment)  # the seeded kill moment: the only fixed wait of the runs
            rig.daemon.kill()
            moments.append(moment)
            mails_at_kill.append(len(rig.sink.mails))
            orphans += rig.reap()
        rig.finish(result, allowed_duplicates=len(moments))
        per_kill = _duplicates_per_life(rig.sink, mails_at_kill)
        result.check(f"{settings.kills} kills done", len(moments) == settings.kills, f"{len(moments)} kills")
        result.check("at most one duplicate per kill", max(per_kill, default=0) <= 1,
                     f"most duplicates after one kill: {max(per_kill, default=0)}")
        result.figures.update({
            "kills": len(moments), "seed": settings.seed,
            "kill moments (s after start)": f"{min(moments):.2f}..{max(moments):.2f}" if moments else "-",
            "kills during a life that had sent mail": sum(
                1 for i, n in enumerate(mails_at_kill) if n > (mails_at_kill[i - 1] if i else 0)),
            "processes left behind by killed daemons (reaped)": orphans,
        })
    return result


def _duplicates_per_life(sink: MailSink, mails_at_kill: list[int]) -> list[int]:
    """Duplicate mails attributed to the daemon life in which the first copy went out."""
    first_seen: dict[str, int] = {}
    per_life = [0] * (len(mails_at_kill) + 1)
    for index, mail in enumerate(sink.mails):
        if mail.ref is None:
            continue
        if mail.ref in first_seen:
            per_life[first_seen[mail.ref]] += 1
        else:
            first_seen[mail.ref] = sum(1 for n in mails_at_kill if n <= index)
    return per_life


@scenario("smtp_down")
def smtp_down(settings: CrashSettings, work: Path) -> ScenarioResult:
    """The mail server goes away for a stretch while matches keep coming, then comes back."""
    result = ScenarioResult("smtp_down")
    with Rig(settings, work) as rig:
        if not (rig.start() and rig.wait_for_activity()):
            result.check("daemon running and sending", False, "\n".join(rig.daemon.lines()[-5:]))
            return result
        rig.sink.stop()
        before = len(rig.sink.mails)
        failed = wait_until(lambda: db_rows(rig.db, "SELECT COUNT(*) FROM alerts WHERE status = 'failed'")[0][0] > 0
                            or not rig.daemon.alive(), settings.smtp_down + 30)
        wait_until(lambda: not rig.daemon.alive(), settings.smtp_down)  # the stretch, watching the daemon
        result.check("failed sends recorded while the server is down", failed and rig.daemon.alive(),
                     f"{db_rows(rig.db, 'SELECT COUNT(*) FROM alerts WHERE status = ?', 'failed')[0][0]} failed")
        result.check("daemon alive through the outage", rig.daemon.alive(), "")
        rig.sink.start()
        rig.finish(result, allowed_duplicates=0)
        result.figures.update({"outage (s)": settings.smtp_down, "mails before the outage": before,
                               "mails after": len(rig.sink.mails) - before})
    return result


@scenario("disk_full")
def disk_full(settings: CrashSettings, work: Path) -> ScenarioResult:
    """The database's filesystem fills to the last byte for a stretch, then space returns."""
    result = ScenarioResult("disk_full")
    disk = work / "disk"
    disk.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        result.skipped = f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root"
        return result
    try:
        with Rig(settings, work / "run", db=disk / "monitor.db") as rig:
            if not (rig.start() and rig.wait_for_activity()):
                result.check("daemon running and sending", False, "\n".join(rig.daemon.lines()[-5:]))
                return result
            filler = disk / "filler"
            _fill(filler)
            full_at = datetime.now(UTC)
            errors_logged = wait_until(
                lambda: bool(rig.log_lines_matching("database or disk is full")) or not rig.daemon.alive(),
                settings.disk_full + 30)
            wait_until(lambda: not rig.daemon.alive(), settings.disk_full)  # the stretch
            alive = rig.daemon.alive()
            listed = _feeds_list_output(rig)
            filler.unlink()
            freed_at = datetime.now(UTC)
            result.check("daemon alive while the disk is full", alive, "")
            lines = rig.log_lines_matching("database or disk is full")
            _check_clear_error(result, lines, errors_logged, "the disk is full")
            result.check("`feeds list` says the disk is full", "disk is full" in listed.lower()
                         or "no space" in listed.lower(), listed[:200])
            recovered = wait_until(lambda: db_rows(
                rig.db, "SELECT COUNT(*) FROM entries WHERE first_seen > ?", _text(freed_at))[0][0] > 0,
                60)
            result.check("stories stored again once space returns", recovered, "")
            _check_heartbeat(result, rig, freed_at)
            rig.finish(result, allowed_duplicates=0)
            result.figures["full for (s)"] = round((freed_at - full_at).total_seconds())
    finally:
        _unmount(disk)
    return result


def _unmount(disk: Path) -> None:
    """Unmount once the daemon's last processes let go of it; detach lazily if they never do."""
    if not wait_until(lambda: subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0,
                      10.0, every=0.5):
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(path: Path) -> None:
    """Write zeros until the filesystem has not one byte left (ENOSPC at every size)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 1024 * 1024
        while size:
            try:
                os.write(fd, bytes(size))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    finally:
        os.close(fd)


@scenario("db_locked")
def db_locked(settings: CrashSettings, work: Path) -> ScenarioResult:
    """Another process holds an exclusive lock on the database for a stretch."""
    result = ScenarioResult("db_locked")
    with Rig(settings, work) as rig:
        if not (rig.start() and rig.wait_for_activity()):
            result.check("daemon running and sending", False, "\n".join(rig.daemon.lines()[-5:]))
            return result
        locker = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(rig.db)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        locked = locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        errors_logged = wait_until(lambda: bool(rig.log_lines_matching("database is locked")) or not rig.daemon.alive(),
                                   settings.db_locked)
        wait_until(lambda: not rig.daemon.alive(), settings.db_locked - (time.monotonic() - locked_at))
        alive = rig.daemon.alive()
        locker.stdin.close()
        locker.wait(timeout=30)
        released_at = datetime.now(UTC)
        lines = rig.log_lines_matching("database is locked")
        result.check("lock taken by the other process", locked, "")
        result.check("daemon alive while the database is locked", alive, "")
        _check_clear_error(result, lines, errors_logged, "the database is locked")
        recovered = wait_until(lambda: db_rows(
            rig.db, "SELECT COUNT(*) FROM entries WHERE first_seen > ?", _text(released_at))[0][0] > 0, 60)
        result.check("stories stored again once the lock is gone", recovered, "")
        _check_heartbeat(result, rig, released_at)
        rig.finish(result, allowed_duplicates=0)
        result.figures["locked for (s)"] = settings.db_locked
    return result


def _check_heartbeat(result: ScenarioResult, rig: Rig, since: datetime) -> None:
    """The heartbeat (written every 10 s) must survive the stretch; so must the log's format."""
    def beat() -> str:
        rows = db_rows(rig.db, "SELECT value FROM meta WHERE key = 'heartbeat'")
        return rows[0][0] if rows else ""

    resumed = wait_until(lambda: beat() > since.isoformat(), 30)
    result.check("heartbeat resumes afterwards", resumed, f"last heartbeat {beat() or 'never'}")
    raw = rig.log_lines_matching("Task exception was never retrieved")
    result.check("no unhandled task exception", not raw, f"{len(raw)} 'Task exception was never retrieved'")


_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def _check_clear_error(result: ScenarioResult, lines: list[str], logged: bool, what: str) -> None:
    """Said in the log, and at least once as one line of its own rather than a traceback."""
    plain = [line for line in lines if "level=" in line and "exc=" not in line]
    result.check(f"the log says {what}", logged and bool(lines), (lines or ["(no such line)"])[0][:160])
    result.check("... in a line of its own, not a traceback", bool(plain),
                 f"{len(lines)} lines, {len(lines) - len(plain)} of them tracebacks"
                 + (f"; e.g. {plain[0][:160]}" if plain else ""))
    result.figures["log lines about it"] = len(lines)
    result.figures["of which tracebacks"] = len(lines) - len(plain)


def _feeds_list_output(rig: Rig) -> str:
    """What `monitor feeds list --json` prints (out and err), and a summary of its rows."""
    listed = monitor("feeds", "list", "--json", env=rig.workspace.env)
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    statuses = Counter(f"{row['status']}/{row['last_error_kind']}" for row in rows)
    errors = " ".join(str(row["last_error"]) for row in rows if row["last_error"])
    warnings = [line for line in listed.stderr.splitlines() if "under a minute" not in line]
    return f"exit {listed.returncode}; rows {dict(statuses)}; {errors} {' '.join(warnings)}".strip()


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


# --------------------------------------------------------------------------


def run_crash(settings: CrashSettings, work: Path, *, log=print) -> list[ScenarioResult]:
    results = []
    for name in settings.scenarios:
        started = time.monotonic()
        result = SCENARIOS[name](settings, work / name)
        result.figures["wall time (s)"] = round(time.monotonic() - started)
        log(f"{name}: {'skipped' if result.skipped else 'PASS' if result.ok else 'FAIL'} "
            f"in {result.figures['wall time (s)']} s")
        results.append(result)
    return results


def report(settings: CrashSettings, results: list[ScenarioResult]) -> str:
    lines = [f"crash run: {settings.command()}", ""]
    for result in results:
        lines.append(f"== {result.name}" + (f": SKIPPED, {result.skipped}" if result.skipped else ""))
        if result.skipped:
            continue
        lines.append(table(list(result.figures.items()), ["figure", "value"]))
        lines.append(table([("PASS" if c.ok else "FAIL", c.name, c.detail) for c in result.checks],
                           ["", "check", "detail"]))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = CrashSettings()
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--feeds", type=int, default=defaults.feeds)
    parser.add_argument("--interval", type=float, default=defaults.interval)
    parser.add_argument("--alert-every", type=int, default=defaults.alert_every)
    parser.add_argument("--max-delay", type=float, default=defaults.max_delay)
    parser.add_argument("--smtp-down", type=float, default=defaults.smtp_down)
    parser.add_argument("--disk-full", type=float, default=defaults.disk_full)
    parser.add_argument("--db-locked", type=float, default=defaults.db_locked)
    parser.add_argument("--scenarios", default=",".join(defaults.scenarios),
                        help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--work", type=Path, help="keep configs, databases and logs here")
    args = parser.parse_args()
    chosen = tuple(name.strip() for name in args.scenarios.split(",") if name.strip())
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    settings = CrashSettings(args.kills, args.seed, args.feeds, args.interval, args.alert_every,
                             args.max_delay, args.smtp_down, args.disk_full, args.db_locked, chosen)
    if args.work:
        results = run_crash(settings, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
            results = run_crash(settings, Path(tmp))
    print(report(settings, results))
    print(f"reproduce: {settings.command()}")
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
