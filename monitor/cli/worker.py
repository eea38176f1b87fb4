"""`monitor worker`: one worker of a cluster sharing a PostgreSQL database (monitor.runtime.worker)."""

from __future__ import annotations

import asyncio
import os
import socket

import click

from monitor.cli.context import App
from monitor.config.paths import DatabaseURL
from monitor.errors import UsageError


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Jobs this worker runs at once (polls and sends wait on the network, not the CPU).")
@click.option("--name", default=None, metavar="NAME",
              help="The worker's name in `monitor status` (default: HOST-PID).")
@click.pass_obj
def worker_command(app: App, concurrency: int, name: str | None) -> None:
    """Poll feeds and send alerts as one worker of a cluster that shares a PostgreSQL database.

    Start any number of workers, on any number of machines, each with the same
    config folder and the same --db (or MONITOR_DB). Every due feed is polled by
    one of them, every story stored once and every alert sent once, while
    workers come and go: the jobs of a worker that dies are retried by another.
    Stops on SIGTERM or Ctrl-C after its running jobs. `monitor run` keeps doing
    everything in one process instead.

    \b
    Examples:
      monitor --db postgresql://monitor@db.example/monitor worker
      monitor --db postgresql://monitor@db.example/monitor worker --concurrency 8 --name db1-a
    """
    location = app.db_path
    if not isinstance(location, DatabaseURL):
        raise UsageError(f"monitor worker needs a PostgreSQL database (--db postgresql://...), not the "
                         f"SQLite file {location}: a cluster shares its database; one machine runs `monitor run`")
    try:
        import procrastinate  # noqa: F401 - only to say how to get it
    except ImportError:
        raise UsageError("monitor worker needs procrastinate: pip install 'monitor[postgres]'") from None
    from monitor.ingest.prepare import prepare
    from monitor.runtime.worker import run_worker

    prepared = prepare(app.config(), cache_dir=location.parent)
    asyncio.run(run_worker(prepared, location, concurrency=concurrency,
                           name=name or f"{socket.gethostname()}-{os.getpid()}"))


COMMANDS = [worker_command]
