"""The config folder compiled into what the pipeline runs with: the watch's matcher, the
destinations, the delivery policy, the templates and the alert planner.

Compiled once at start and on every reload; a mistake is a ConfigError and a
reload keeps the old config.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config.load import Config
from monitor.ingest.storing import AlertPlanner
from monitor.ingest.workers import MatchFn
from monitor.models import Entry, Match
from monitor.store.database import StoreThread

if TYPE_CHECKING:
    from monitor.alert.dispatch import Dispatcher
    from monitor.alert.render import Templates
    from monitor.ingest.pipeline import Clock
    from monitor.match.engine import Matcher
    from monitor.match.watch import Watch
    from monitor.models import AlertSettings, Destination

log = logging.getLogger("monitor.ingest.pipeline")  # one logger for the whole pipeline


def load_watch_for(config: Config):
    """The watch rules of the config folder (watch.toml); an absent file means no rules."""
    from monitor.match.watch import load_watch

    return load_watch(config.dir / "watch.toml")


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _compiled_on_first_use(watch: Watch, watch_text: bytes, cache_dir: Path | None) -> MatchFn:
    """The watch's match function, compiling the matcher when the first story comes.

    load_watch has already checked everything compiling checks, so nothing is
    refused later; a poll with nothing new (a re-poll of unchanged feeds) then
    never imports the engine or reads the word cache."""
    lock = threading.Lock()
    compiled: list[Matcher] = []

    def match(entry: Entry, feed_tags: Sequence[str]) -> list[Match]:
        from monitor.match.engine import match_entry

        if not compiled:
            with lock:
                if not compiled:
                    from monitor.match.cache import compile_watch

                    compiled.append(compile_watch(watch, watch_text, cache_dir))
        return match_entry(compiled[0], entry, feed_tags)

    return match


@dataclass(frozen=True)
class Alerting:
    """Destinations, delivery policy and templates, plus the planner that fills the outbox."""

    destinations: tuple[Destination, ...]
    admins: tuple[Destination, ...]  # tagged "admin": feed-health alerts
    settings: AlertSettings
    tz: str
    templates: Templates
    planner: AlertPlanner
    warnings: tuple[str, ...] = ()

    def dispatcher(self, store: StoreThread, clock: Clock) -> Dispatcher:
        from monitor.alert.dispatch import Dispatcher

        return Dispatcher(store, self.destinations, self.settings, self.tz, self.templates,
                          clock=clock)


@dataclass(frozen=True)
class Prepared:
    """The config folder compiled into what the pipeline runs with."""

    config: Config
    match: MatchFn | None
    alerting: Alerting


def prepare(config: Config, env: dict[str, str] | None = None, *, log_warnings: bool = True,
            cache_dir: Path | None = None) -> Prepared:
    """Validate and compile watch.toml, alerts.toml and the templates (ConfigError on mistakes).

    Warnings (a lower-case `or` in a query, a secrets file others can read) are
    logged, so the daemon reports them at start and on every reload; a command
    that prints them itself passes log_warnings=False. CACHE_DIR (the database's
    folder) keeps the watch's word analyses between runs (monitor.match.cache), so
    an unchanged watch compiles without loading pymorphy3."""
    from monitor.alert.destinations import load_alerts
    from monitor.alert.outbox import Planner
    from monitor.alert.render import load_templates
    from monitor.alert.route import admin_recipients

    watch = load_watch_for(config)
    match: MatchFn | None = None
    if any(rule.enabled for rule in watch.rules):
        match = _compiled_on_first_use(watch, _read_or_empty(config.dir / "watch.toml"), cache_dir)

    alerts = load_alerts(config.dir, dict(os.environ) if env is None else env)
    planner = Planner(alerts.destinations, alerts.settings, config.timezone,
                      {rule.name: rule.description for rule in watch.rules})
    alerting = Alerting(destinations=tuple(alerts.destinations),
                        admins=tuple(admin_recipients(alerts.destinations)),
                        settings=alerts.settings, tz=config.timezone,
                        templates=load_templates(config.dir), planner=planner,
                        warnings=tuple(alerts.warnings))
    if log_warnings:
        from monitor.match.watch import watch_warnings

        for warning in (*watch_warnings(watch), *alerting.warnings):
            log.warning("config %s", warning)
    return Prepared(config, match, alerting)
