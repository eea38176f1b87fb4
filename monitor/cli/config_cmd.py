"""`monitor init` and `monitor config check`."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.context import App
from monitor.cli.output import emit
from monitor.paths import init_config_dir


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
    """Inspect the configuration folder.

    \b
    Example:
      monitor config check
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
    from monitor.service import load_watch_for, prepare

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


COMMANDS = [init_command, config_group]
