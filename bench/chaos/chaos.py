"""Chaos run: `monitor run` as a real process against local feeds of which a share misbehave.

    python -m bench.chaos.chaos --feeds 200 --hostile 0.2 --cycles 10 --seed 7

The hostile server (`bench.chaos.hostile`) serves every feed from one of the
loopback addresses 127.0.0.2 ... 127.0.0.9, so feeds that hang hold the
connection slots of their own host only. At each poll a feed is healthy (one
new story per poll, every third one matching the watch) or, with probability
`--hostile`, one of the hostile cases drawn at random: the draw is per feed and
per poll, fixed by the seed, so a feed can misbehave in one cycle and recover
in the next. From poll number `--cycles` on, each feed keeps its last case,
so its final state can be checked. Alerts go to a real SMTP server (aiosmtpd);
the daemon runs with HTTP(S)_PROXY/ALL_PROXY pointing at a recording proxy,
so any request for a non-loopback address would be seen there; one canary feed
on a non-loopback name proves that it would.

Checks: the daemon never exits until told and exits 0 on SIGTERM; peak RSS of
the daemon and its parser processes under 300 MB; every story served in a
successful answer is stored exactly once; every expected alert arrives exactly
once, with the injected markup inert; each feed shows the outcome its last
case calls for in `monitor feeds list --json`; no external DTD or entity was
requested; the proxy saw nothing; the database passes integrity_check.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.chaos.harness import (
    SEND_RATE,
    Check,
    Daemon,
    MailSink,
    RecordingProxy,
    Workspace,
    db_rows,
    feeds_list,
    integrity,
    table,
    wait_until,
)
from bench.chaos.hostile import CASES, DEFAULT_HOSTS, OK, Gone, HostileServer, MarkupInjection, Outcome, Plan, Served
from bench.memory import TreeMemory

MAX_RSS_MB = 300.0
FETCH = {"connect_timeout": "2s", "read_timeout": "2s", "deadline": "4s",
         "global_limit": 32, "per_host_limit": 4}
# rate_limit 0: no flood guard, so that every matching story is one immediate mail to count.
# A feed on a non-loopback name: its polls must reach the recording proxy, which proves
# the proxy would have seen any other request leaving loopback.
CANARY = ("canary", "http://canary.invalid/feed.xml")
ALERT_SETTINGS = {"retry_base": "1s", "retry_cap": "2s", "send_timeout": "10s", "rate_limit": 0}


@dataclass(frozen=True)
class ChaosSettings:
    feeds: int = 200
    hostile: float = 0.2
    cycles: int = 10
    seed: int = 7
    interval: float = 5.0  # seconds between two polls of a feed
    alert_every: int = 8  # one healthy story in this many matches the watch
    hosts: tuple[str, ...] = DEFAULT_HOSTS

    def command(self) -> str:
        return (f"python -m bench.chaos.chaos --feeds {self.feeds} --hostile {self.hostile} "
                f"--cycles {self.cycles} --seed {self.seed} --interval {self.interval:g} "
                f"--alert-every {self.alert_every}")


@dataclass
class ChaosResult:
    settings: ChaosSettings
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    cases: list[tuple] = field(default_factory=list)  # per-case rows for the report

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def report(self) -> str:
        lines = [f"chaos run: {self.settings.command()}", ""]
        lines.append(table([(k, v) for k, v in self.figures.items()], ["figure", "value"]))
        lines += ["", table(self.cases, ["case", "answers in the cycles", "answers in all",
                                         "feeds ending in it", "right outcome", "expected outcome",
                                         "wrong"])]
        lines += ["", table([("PASS" if c.ok else "FAIL", c.name, c.detail) for c in self.checks],
                            ["", "check", "detail"])]
        return "\n".join(lines)


def feed_names(count: int) -> list[str]:
    return [f"c{index:03d}" for index in range(count)]


def settled(server: HostileServer, feed: str, cycles: int) -> bool:
    """The feed answered its final case twice (so the first answer is stored), or is gone."""
    finals = [s for s in server.history.get(feed, ()) if s.final]
    if not finals:
        return False
    last = finals[-1]
    if last.case == Gone.name:
        return True
    return last.poll >= cycles and sum(
        1 for s in finals if s.poll == last.poll and s.case == last.case) >= 2


def run_chaos(settings: ChaosSettings, work: Path, *, log=print) -> ChaosResult:
    """The whole run in WORK; returns every check and figure (raises only on harness faults)."""
    result = ChaosResult(settings)
    plan = Plan(settings.seed, settings.hostile, settings.cycles)
    names = feed_names(settings.feeds)
    started = time.monotonic()
    with HostileServer(settings.hosts, seed=settings.seed, plan=plan,
                       alert_every=settings.alert_every) as server:
        sink = MailSink().start()
        proxy = RecordingProxy().start()
        try:
            workspace = Workspace(work, proxy=proxy.url)
            feeds = [(name, server.feed_url(name, host=index)) for index, name in enumerate(names)]
            workspace.write([*feeds, CANARY],
                            interval=f"{settings.interval:g}s", smtp_url=sink.url(), fetch=FETCH,
                            alert_settings=ALERT_SETTINGS)
            daemon = Daemon(workspace.env, work / "daemon.log").start()
            budget = 120 + settings.cycles * settings.interval * 4
            with TreeMemory(daemon.pid, every=0.1) as meter:
                all_settled = wait_until(
                    lambda: not daemon.alive() or all(settled(server, n, settings.cycles) for n in names),
                    budget, every=0.5)
                settled_after = time.monotonic() - started
                log(f"feeds settled after {settled_after:.0f} s: {all_settled}")
                expected_alerts = {ref for s in server.served() if OK in s.outcomes for ref in s.alerts}
                alerts_arrived = daemon.alive() and sink.wait_for_refs(
                    expected_alerts, timeout=60 + len(expected_alerts) / SEND_RATE)
                log(f"alerts arrived after {time.monotonic() - started:.0f} s: {alerts_arrived}")
                alive = daemon.alive()
                code = daemon.stop()
            wall = time.monotonic() - started
            log(f"daemon stopped with exit code {code} after {wall:.0f} s")
            unsettled = [n for n in names if not settled(server, n, settings.cycles)]
            result.check("every feed reached its final case", all_settled,
                         f"{len(names) - len(unsettled)}/{len(names)} settled"
                         + (f"; not: {', '.join(unsettled[:10])}" if unsettled else ""))
            result.check("never crashed; exit 0 on SIGTERM", alive and code == 0,
                         f"alive until SIGTERM: {alive}, exit code {code}")
            result.check(f"peak RSS < {MAX_RSS_MB:g} MB", meter.peak_mb < MAX_RSS_MB,
                         f"{meter.peak_mb:.0f} MB (daemon and parser processes)")
            served = server.served()
            _check_stories(result, workspace, served)
            _check_alerts(result, sink, expected_alerts, alerts_arrived)
            _check_outcomes(result, workspace, server, names, served)
            result.check("no external DTD or entity requested", not server.leaks,
                         f"{len(server.leaks)} requests" + (f": {server.leaks[:3]}" if server.leaks else ""))
            result.check("no credential sent to another host (redirects included)",
                         not server.credential_leaks,
                         f"{len(server.credential_leaks)} requests"
                         + (f": {server.credential_leaks[:3]}" if server.credential_leaks else ""))
            leaving = [line for line in proxy.seen if "canary.invalid" not in line]
            result.check("no request left loopback (the proxy saw only the canary's)",
                         not leaving and len(proxy.seen) > 0,
                         f"{len(proxy.seen) - len(leaving)} canary requests, {len(leaving)} others, "
                         f"{proxy.empty} connections that sent nothing"
                         + (f": {leaving[:3]}" if leaving else ""))
            _check_on_time(result, workspace, served, settings.interval)
            check = integrity(workspace.db)
            result.check("database integrity_check", check == "ok", check)
            errors = Counter(kind for (kind,) in db_rows(
                workspace.db, "SELECT error_kind FROM fetch_log WHERE error_kind IS NOT NULL"))
            polls = db_rows(workspace.db, "SELECT COUNT(*) FROM fetch_log")[0][0]
            result.figures.update({
                "feeds": settings.feeds, "hostile share": settings.hostile,
                "cycles": settings.cycles, "seed": settings.seed,
                "interval (s)": settings.interval, "loopback hosts": len(settings.hosts),
                "requests served": server.requests, "polls logged (last 50 per feed)": polls,
                "hostile answers": sum(1 for s in served if s.case != "healthy"),
                "errors by kind (fetch log)": ", ".join(f"{k}={v}" for k, v in sorted(errors.items())),
                "peak RSS (MB)": round(meter.peak_mb), "peak PSS (MB)": round(meter.peak_pss_mb),
                "alerts expected": len(expected_alerts),
                "mails received": len(sink.mails), "feeds settled after (s)": round(settled_after),
                "wall time (s)": round(wall),
            })
        finally:
            proxy.stop()
            sink.stop()
    return result


def _check_stories(result: ChaosResult, workspace: Workspace, served: list[Served]) -> None:
    expected = {(s.feed, guid) for s in served if OK in s.outcomes and s.final for guid in s.stories}
    offered = {(s.feed, guid) for s in served for guid in s.stories}
    rows = db_rows(workspace.db, "SELECT f.name, e.guid, COUNT(*) FROM entries e "
                                 "JOIN feeds f ON f.id = e.feed_id GROUP BY f.name, e.guid")
    stored = {(name, guid): count for name, guid, count in rows}
    lost = sorted(expected - stored.keys())
    twice = sorted(key for key, count in stored.items() if count > 1)
    phantom = sorted(stored.keys() - offered)
    result.check("every story of a successful answer stored exactly once",
                 not lost and not twice and not phantom,
                 f"{len(expected)} expected, {len(stored)} stored; lost {len(lost)}, "
                 f"stored twice {len(twice)}, never served {len(phantom)}"
                 + (f"; e.g. lost {lost[:3]}" if lost else ""))
    result.figures["stories stored"] = len(stored)


def _check_on_time(result: ChaosResult, workspace: Workspace, served: list[Served],
                   interval: float) -> None:
    """Feeds that were answered healthily every time must be polled on their rhythm while
    the hostile ones around them time out, blow up or drip: no gap between two polls of
    such a feed beyond twice its interval plus 5 s (the jitter is 10 %)."""
    healthy = sorted({s.feed for s in served} - {s.feed for s in served if s.case != "healthy"})
    rows = db_rows(workspace.db, "SELECT f.name, l.at FROM fetch_log l JOIN feeds f ON f.id = l.feed_id "
                                 "ORDER BY f.name, l.id")
    times: dict[str, list[datetime]] = defaultdict(list)
    for name, at in rows:
        times[name].append(datetime.fromisoformat(at.replace("Z", "+00:00")))
    gaps = [(later - earlier).total_seconds()
            for name in healthy for earlier, later in zip(times[name], times[name][1:], strict=False)]
    worst = max(gaps, default=0.0)
    limit = 2 * interval + 5
    result.check("healthy feeds polled on time (no gap over 2 intervals + 5 s)",
                 bool(healthy) and bool(gaps) and worst <= limit,
                 f"{len(healthy)} always-healthy feeds, {len(gaps)} gaps, worst {worst:.1f} s (limit {limit:g} s)")
    result.figures["worst poll gap of a healthy feed (s)"] = round(worst, 1)


def _check_alerts(result: ChaosResult, sink: MailSink, expected: set[str], arrived: bool) -> None:
    counts = sink.counts()
    missing = sorted(expected - counts.keys())
    twice = sorted(ref for ref, n in counts.items() if n > 1)
    unexpected = sorted(counts.keys() - expected)
    result.check("every expected alert delivered exactly once",
                 arrived and not missing and not twice and not unexpected,
                 f"{len(expected)} expected; missing {len(missing)}, duplicated {len(twice)}, "
                 f"unexpected {len(unexpected)}"
                 + (f"; e.g. missing {missing[:3]}" if missing else "")
                 + (f"; e.g. twice {twice[:3]}" if twice else ""))
    injected = [mail for mail in sink.mails if mail.ref and mail.ref.endswith("-inject")]
    live = [mail.ref for mail in injected
            if "<script" in mail.html.lower() or 'href="javascript:' in mail.html.lower()
            or "<img" in mail.html.lower()]
    result.check(f"{MarkupInjection.name} alerts arrive as inert text", not live,
                 f"{len(injected)} such alerts, {len(live)} with live markup")


def _check_outcomes(result: ChaosResult, workspace: Workspace, server: HostileServer,
                    names: list[str], served: list[Served]) -> None:
    rows = feeds_list(workspace.env)
    per_case: dict[str, list[tuple[str, Outcome, tuple[Outcome, ...]]]] = defaultdict(list)
    for name in names:
        last = server.last_final(name)
        row = rows[name]
        shown = Outcome(row["status"], row["last_error_kind"])
        per_case[last.case].append((name, shown, last.outcomes))
    wrong = []
    served_count = Counter(s.case for s in served)
    in_cycles = Counter(s.case for s in served if s.poll < result.settings.cycles)
    for case_name in CASES:
        endings = per_case.get(case_name, [])
        bad = [f"{name}: {shown}" for name, shown, allowed in endings if shown not in allowed]
        wrong += bad
        expected = " or ".join(str(o) for o in CASES[case_name].expected)
        result.cases.append((case_name, in_cycles.get(case_name, 0), served_count.get(case_name, 0),
                             len(endings),
                             len(endings) - len(bad), expected, "; ".join(bad[:3])))
    result.check("each feed shows the outcome of its last case in `feeds list --json`", not wrong,
                 f"{len(names) - len(wrong)}/{len(names)} right" + (f"; wrong: {wrong[:5]}" if wrong else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--hostile", type=float, default=0.2, help="share of hostile feeds per poll")
    parser.add_argument("--cycles", type=int, default=10, help="polls per feed before the cases freeze")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls of a feed")
    parser.add_argument("--alert-every", type=int, default=8,
                        help="one healthy story in this many matches the watch")
    parser.add_argument("--work", type=Path, help="keep the config, database and log here")
    args = parser.parse_args()
    settings = ChaosSettings(args.feeds, args.hostile, args.cycles, args.seed, args.interval,
                             args.alert_every)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run_chaos(settings, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            result = run_chaos(settings, Path(tmp))
    print(result.report())
    print(f"\nreproduce: {settings.command()}")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
