"""`monitor init` and `monitor config check`."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.context import App
from monitor.cli.output import emit
from monitor.config.paths import init_config_dir
from monitor.errors import UsageError


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the files of a non-empty folder.")
@click.option("--no-feeds", is_flag=True,
              help="Leave the feed list empty (bring your own feeds; used by tests).")
def init_command(directory: Path, force: bool, no_feeds: bool) -> None:
    """Write a complete, commented default config folder to DIRECTORY.

    \b
    Examples:
      monitor init ~/watch
      monitor init ~/watch --no-feeds
      monitor init /etc/monitor --force
    """
    written = init_config_dir(directory, force=force, no_feeds=no_feeds)
    for path in written:
        emit(f"wrote {path}")
    emit(f"next: monitor --config {directory} config check")


@click.group("config")
def config_group() -> None:
    """Inspect the configuration folder, or push it to a cluster's database.

    \b
    Examples:
      monitor config check
      monitor --db postgresql://monitor@db.example/monitor config push
    """


@config_group.command("check")
@click.pass_obj
def config_check(app: App) -> None:
    """Validate every file of the config folder; exit 2 with file:line on an error.

    \b
    Examples:
      monitor config check
      monitor --config /etc/monitor config check
    """
    config = app.config()
    from monitor.ingest.prepare import load_watch_for, prepare
    from monitor.match.watch import watch_warnings

    prepared = prepare(config, log_warnings=False)
    watch = load_watch_for(config)
    destinations = prepared.alerting.destinations
    emit(f"config folder: {config.dir}")
    emit(f"database:      {app.db_path}")
    emit(f"feeds:         {len(config.feeds)}")
    emit(f"rules:         {len([r for r in watch.rules if r.enabled])} enabled, "
         f"{len(watch.rules)} in all")
    emit(f"destinations:  {len(destinations) or 'none (alerts print to the console)'}")
    for warning in (*watch_warnings(watch), *prepared.alerting.warnings):
        emit(f"warning: {warning}", err=True)
    emit("ok")


@config_group.command("push")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def config_push(app: App, directory: Path | None) -> None:
    """Make DIRECTORY (default: the config folder) the config every worker of the cluster runs.

    The folder is checked first, as a reload checks it: a mistake exits 2 with
    file:line, and the workers keep the version they run. Workers reload a new
    version within seconds. secrets.toml is not pushed: each machine keeps its
    own. Needs the cluster's PostgreSQL database (--db or MONITOR_DB).

    \b
    Examples:
      monitor --db postgresql://monitor@db.example/monitor config push
      monitor config push /srv/monitor/config
    """
    from monitor.edit.push import push_folder

    folder = directory if directory is not None else app.config_dir
    if not folder.is_dir():
        raise UsageError(f"no config folder at {folder}")
    pushed = push_folder(folder, app.db_path)
    if pushed.new:
        emit(f"pushed {folder} as config version {pushed.version} ({pushed.digest}) to {app.db_path}")
    else:
        emit(f"unchanged: config version {pushed.version} ({pushed.digest}) already holds {folder}")


COMMANDS = [init_command, config_group]
