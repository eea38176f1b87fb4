"""`monitor status`: is the daemon healthy, and what has it been doing today."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.context import App
from monitor.cli.output import coloured, emit
from monitor.config.load import Config
from monitor.errors import ConfigError
from monitor.read.status import gather_status


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the summary.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool) -> None:
    """Show whether the daemon runs and is healthy, its feeds, today's stories and
    matches, the alert queue, today's alerted stories that other outlets also
    reported (sent once), and any config error the daemon refused.

    Reads the database only, so it works while the daemon runs (and as the
    service's user: `sudo -u monitor monitor status`).

    Exit codes: 0 healthy (daemon running, heartbeat under 2 minutes old, no
    config error); 1 not healthy (daemon down or stuck, or the daemon refused an
    invalid config and runs on the previous one).

    \b
    Examples:
      monitor status
      monitor status --json | jq .feeds
      monitor status || systemctl status monitor
    """
    app: App = ctx.obj
    config_dir = app.config_dir  # a --config that does not exist is an error (exit 2), not another setup
    status = gather_status(app.db_path, _config_or_none(app), datetime.now(UTC))
    status["config_folder"] = str(config_dir)
    if as_json:
        emit(json.dumps(status, ensure_ascii=False))
    else:
        for line in summary_lines(status):
            emit(line)
    ctx.exit(0 if status["healthy"] else 1)


def _config_or_none(app: App) -> Config | None:
    """The config only sets what "today" means (its timezone): a broken one must not
    hide the daemon's status, which is what someone fixing it needs to see."""
    try:
        return app.config()
    except ConfigError:
        return None


def summary_lines(status: dict[str, Any]) -> list[str]:
    """One line per section; the verdict in green or red on a terminal."""
    if status["healthy"]:
        verdict = _coloured("healthy", "green")
    else:
        verdict = _coloured("NOT healthy: " + "; ".join(status["problems"]), "red")
    feeds, alerts = status["feeds"], status["alerts"]
    lines = [
        f"status:  {verdict}",
        f"daemon:  {_daemon_line(status['daemon'])}",
        f"feeds:   {feeds['total']} total: {feeds['ok']} ok, {feeds['error']} erroring, "
        f"{feeds['backing_off']} backing off, {feeds['gone']} gone, {feeds['paused']} paused, "
        f"{feeds['new']} never polled",
        f"today:   {status['stories_today']} stories, {status['matched_stories_today']} matched "
        f"({status['matches_today']} rule matches)",
        f"alerts:  {alerts['pending']} pending, {alerts['failed']} failed (retrying), "
        f"{alerts['dead']} dead, {alerts['cancelled']} cancelled, {alerts['sent_today']} sent today "
        f"({alerts['stories_sent_today']} stories; one alert per story and destination)",
    ]
    if "cluster" in status:
        lines.extend(_cluster_lines(status["cluster"]))
    for story in status.get("also_reported_today", []):
        lines.append(f"copies:  {story['title']} ({story['feed']}), also reported by "
                     f"{', '.join(story['also_reported_by'])}")
    if status["config_error"]:
        first, *rest = status["config_error"].splitlines()
        lines.append(f"config:  {_coloured('error: ' + first, 'red')}")
        lines.extend(f"         {line}" for line in rest)
    folder = status.get("config_folder")
    if folder:
        missing = "" if Path(folder).is_dir() else " (does not exist)"
        lines.append(f"read:    config folder {folder}{missing}, database {status['database']}")
    else:
        lines.append(f"read:    database {status['database']}")
    return lines


def _cluster_lines(cluster: dict[str, Any]) -> list[str]:
    """The workers of a cluster, one line each, and the job queue."""
    lines = [f"workers: {cluster['workers_alive']} alive of {len(cluster['workers'])}"]
    for node in cluster["workers"]:
        state = "alive" if node["alive"] else _coloured("silent", "red")
        lines.append(f"  {node['name']}: {state}, heartbeat {node['heartbeat_age']:.0f} s ago, "
                     f"{node['host']} pid {node['pid']}, config {node['config_version'] or '?'}")
    queue = cluster.get("queue")
    if queue is not None:
        oldest = queue["oldest_waiting_age"]
        lines.append(f"queue:   {queue['waiting']} jobs waiting ({queue['polls_waiting']} polls), "
                     f"{queue['running']} running" + ("" if oldest is None else f", oldest waiting {oldest:.0f} s"))
    return lines


def _daemon_line(daemon: dict[str, Any]) -> str:
    if daemon.get("first_cycle_under_way"):
        last_cycle = "first cycle under way"
    else:
        last_cycle = f"last cycle {daemon['last_cycle'] or 'never'}"
    if not daemon["running"]:
        started = f", last started {daemon['since']}" if daemon["since"] else ""
        return f"down{started}, {last_cycle}"
    age = daemon["heartbeat_age"]
    heartbeat = "no heartbeat yet" if age is None else f"heartbeat {age:.0f} s ago"
    return f"running (pid {daemon['pid']}) since {daemon['since'] or '?'}, {heartbeat}, {last_cycle}"


def _coloured(text: str, colour: str) -> str:
    return coloured(text, colour)


COMMANDS = [status_command]
