"""The daemon's Prometheus metrics, served on `/metrics` by `monitor run --http`.

A private registry (not prometheus_client's global one) keeps each daemon's
numbers apart, in tests too; it carries the standard `process_*` metrics
(resident memory, CPU seconds, open file descriptors, start time) from
prometheus_client's process collector, which reads /proc. prometheus_client is imported only
when a `Metrics` is built, so the CLI commands that never serve metrics do not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Fetches are capped by FetchSettings.deadline (60 s by default).
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters, a histogram and gauges the daemon updates as it polls and sends."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        ProcessCollector(registry=registry)
        self._polls = Counter("monitor_polls", "Feed polls by outcome.", ["outcome"], registry=registry)
        self._fetch_errors = Counter("monitor_fetch_errors", "Failed fetches by kind of error.",
                                     ["kind"], registry=registry)
        self._entries = Counter("monitor_entries", "Stories stored, new or updated.", ["kind"],
                                registry=registry)
        self._matches = Counter("monitor_matches", "Stories matched, by rule.", ["rule"],
                                registry=registry)
        self._alerts = Counter("monitor_alerts", "Alerts (one per story and destination) by "
                               "delivery result.", ["result"],
                               registry=registry)
        self._fetch_duration = Histogram("monitor_fetch_duration_seconds",
                                         "Time one feed fetch took.", buckets=FETCH_BUCKETS,
                                         registry=registry)
        self._loop_lag = Gauge("monitor_loop_lag_seconds",
                               "How late the event loop ran the last heartbeat.", registry=registry)
        self._feeds = Gauge("monitor_feeds", "Feeds by status.", ["status"], registry=registry)
        self._alerts_pending = Gauge("monitor_alerts_pending", "Alerts (stories per destination) waiting to be sent.",
                                     registry=registry)
        self._workers = Gauge("monitor_cluster_workers_alive",
                              "Workers of the cluster with a heartbeat in the last 30 s.", registry=registry)
        self._jobs = Gauge("monitor_cluster_jobs", "Jobs of the cluster's queue by state.", ["state"],
                           registry=registry)
        self._oldest_job = Gauge("monitor_cluster_oldest_waiting_job_seconds",
                                 "How long the oldest waiting job has waited.", registry=registry)
        self._feed_statuses: set[str] = set()
        # Series that always exist start at zero, so rate() works from the first scrape.
        for kind in ("new", "updated"):
            self._entries.labels(kind=kind)
        for result in ("sent", "failed", "dead", "cancelled"):
            self._alerts.labels(result=result)

    def observe_poll(self, outcome: str, error_kind: str | None, duration: float,
                     new: int, updated: int) -> None:
        """One finished poll of one feed."""
        self._polls.labels(outcome=outcome).inc()
        if error_kind:
            self._fetch_errors.labels(kind=error_kind).inc()
        self._fetch_duration.observe(duration)
        self._entries.labels(kind="new").inc(new)
        self._entries.labels(kind="updated").inc(updated)

    def observe_matches(self, rules: Iterable[str]) -> None:
        """One count per rule name given (a story matching two rules gives both)."""
        for rule in rules:
            self._matches.labels(rule=rule).inc()

    def observe_alerts(self, sent: int, failed: int, dead: int, cancelled: int = 0) -> None:
        """Alerts by outcome; one alert is one story to one destination, whatever its rules."""
        self._alerts.labels(result="sent").inc(sent)
        self._alerts.labels(result="failed").inc(failed)
        self._alerts.labels(result="dead").inc(dead)
        self._alerts.labels(result="cancelled").inc(cancelled)

    def set_loop_lag(self, seconds: float) -> None:
        self._loop_lag.set(seconds)

    def set_feed_statuses(self, counts: Mapping[str, int]) -> None:
        """Feeds per status now; a status no feed has any more drops to zero."""
        for status in self._feed_statuses - set(counts):
            self._feeds.labels(status=status).set(0)
        for status, count in counts.items():
            self._feeds.labels(status=status).set(count)
        self._feed_statuses |= set(counts)

    def set_alerts_pending(self, n: int) -> None:
        self._alerts_pending.set(n)

    def set_cluster(self, workers_alive: int, waiting: int, running: int, oldest_waiting_age: float | None) -> None:
        """The cluster's workers and job queue now (`monitor web` on a PostgreSQL database)."""
        self._workers.set(workers_alive)
        self._jobs.labels(state="waiting").set(waiting)
        self._jobs.labels(state="running").set(running)
        self._oldest_job.set(oldest_waiting_age or 0.0)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric here."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
