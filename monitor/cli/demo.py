"""`monitor demo`: the daemon against sample feeds on 127.0.0.1, alerts to the console."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from monitor.cli.context import App
from monitor.config.durations import parse_duration


class DurationType(click.ParamType):
    """The project's duration grammar on the command line."""

    name = "DURATION"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command("demo")
@click.option("--duration", type=DurationType(), default="60s", show_default=True,
              help="How long the demo runs, such as 60s or 2m.")
@click.option("--keep", metavar="DIR", type=click.Path(path_type=Path),
              help="Keep the demo's config folder and database in DIR (a new or empty folder) "
                   "instead of deleting them.")
@click.pass_obj
def demo_command(app: App, duration: float, keep: Path | None) -> None:
    """See the whole system work on sample feeds: no network, no setup, nothing left behind.

    A local feed server on 127.0.0.1 serves three sample feeds (English,
    Ukrainian, Russian). The daemon polls them with the shipped watch and
    prints each alert here; midway a new story is published and its alert
    arrives on the next poll. Your own config and database are not touched.

    \b
    Examples:
      monitor demo
      monitor demo --duration 2m --keep /tmp/monitor-demo
    """
    from monitor.demo import run_demo

    if app.log_level is None:
        logging.getLogger("monitor").setLevel(logging.WARNING)  # the narration tells the story
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a live show, even through a pipe
    run_demo(duration, keep=keep)


COMMANDS = [demo_command]
