"""`monitor run`: the daemon, or one polling cycle with --once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the service (and httpx under it) loads when the command runs, not for --help
    from monitor.ingest.pipeline import CycleSummary
    from monitor.models import PollReport

from monitor.cli.context import App
from monitor.cli.output import emit
from monitor.errors import MonitorError
from monitor.store.lock import DaemonLock, PostgresDaemonLock, daemon_lock


@click.command("run")
@click.option("--once", is_flag=True,
              help="Poll every active feed now (honouring backoff and Retry-After), send due "
                   "alerts, print a summary and exit.")
@click.option("--watch-config", is_flag=True,
              help="Reload automatically when a file of the config folder changes "
                   "(SIGHUP always reloads).")
@click.option("--http", "http", metavar="HOST:PORT",
              help="Serve the web interface with /healthz, /metrics (Prometheus) and /matches.atom, "
                   "e.g. 127.0.0.1:8080 (default: [http] listen in monitor.toml, else off). Any "
                   "non-loopback host needs a password (`monitor web passwd`).")
@click.pass_obj
def run_command(app: App, once: bool, watch_config: bool, http: str | None) -> None:
    """Poll the configured feeds on their schedule until stopped (SIGTERM or Ctrl-C).

    SIGHUP reloads the config folder; an invalid config is refused and the
    daemon keeps running on the previous one (see `monitor status`).

    Exit codes with --once: 0 when the cycle ran (even if some feeds failed),
    1 when it could not run (database unwritable, another daemon holds it) or
    an alert could not be sent (`monitor alerts list --failed` says why),
    2 for a configuration error.

    \b
    Examples:
      monitor run
      monitor run --watch-config --http 127.0.0.1:8080
      monitor --config ~/watch --db ~/watch/monitor.db run --once
    """
    from monitor.ingest.once import run_once
    from monitor.ingest.prepare import prepare

    listen = None
    if http:
        from monitor.config.listen import parse_listen

        listen = parse_listen(http)
    config = app.config()
    if listen is None and not once:
        listen = config.http
    prepared = prepare(config, cache_dir=app.db_path.parent)
    if listen is not None and not once:
        from monitor.web.auth import guard_for

        guard_for(*listen, config.dir)  # refuse a public address without a password, before anything
    lock = daemon_lock(app.db_path)
    lock.acquire()
    sock = None
    try:
        if listen is not None and not once:
            from monitor.config.listen import bind

            sock = bind(*listen)
        if once:
            # Config edits signal whoever holds the lock; a single run has nothing to reload.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            summary = _run(run_once(config, app.db_path, prepared.match, alerting=prepared.alerting,
                                    progress=_progress_line(len(config.feeds))))
            _print_summary(summary)
        else:
            _run(_daemon(app, prepared, watch_config, sock, lock))
    finally:
        lock.release()
    _exit_now(1 if once and summary.sends_failed else 0)


async def _daemon(app: App, prepared, watch_config: bool, sock, lock: DaemonLock | PostgresDaemonLock) -> None:
    from monitor.config.load import load_config
    from monitor.runtime.daemon import Daemon
    from monitor.runtime.sdnotify import Notifier

    config_dir = prepared.config.dir

    from monitor.ingest.prepare import prepare

    def loader():
        return prepare(load_config(config_dir), cache_dir=app.db_path.parent)

    notifier = Notifier.from_env()
    try:
        await Daemon(prepared, app.db_path, loader=loader, notifier=notifier,
                     watch_config=watch_config, http_socket=sock, lock=lock).run()
    finally:
        notifier.close()


def _exit_now(code: int) -> None:
    """Exit without waiting for threads we no longer need.

    apprise sends on worker threads; one stuck on a dead mail server would hold
    interpreter exit. Everything that matters is committed by now, and an
    abandoned send is still pending in the outbox.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(coro):
    """Run the coroutine; database failures become a clear message and exit 1."""
    try:
        return asyncio.run(coro)
    except sqlite3.Error as exc:
        raise MonitorError(f"database error: {exc}") from None
    except PermissionError as exc:
        raise MonitorError(f"cannot write {exc.filename}: permission denied") from None


def _progress_line(total: int):
    """A live `polled 3/5` line on a terminal; silent otherwise."""
    if not sys.stderr.isatty() or total == 0:
        return None
    done = 0

    def show(report: PollReport) -> None:
        nonlocal done
        done += 1
        click.echo(f"\rpolled {done}/{total} feeds ({report.feed}: {report.outcome})\x1b[K",
                   err=True, nl=done == total)

    return show


def _print_summary(summary: CycleSummary) -> None:
    for report in sorted(summary.reports, key=lambda r: r.feed):
        if report.outcome == "error":
            emit(f"{report.feed}: error: {report.error}")
    emit(summary.line())
    if summary.sends_failed:
        for name, error in sorted(summary.alerts.errors.items()):
            emit(f"alerts to {name} failed: {error}", err=True)
        emit("they are retried with backoff; see `monitor alerts list --failed`", err=True)


COMMANDS = [run_command]
