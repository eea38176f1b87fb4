"""`monitor web`: the web interface alone, on the same database; `monitor web passwd`."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from monitor.cli.context import App
from monitor.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:8080"


@click.group("web", invoke_without_command=True)
@click.option("--http", "http", metavar="HOST:PORT", default=None,
              help=f"Where to listen (default: [http] listen in monitor.toml, else {DEFAULT_LISTEN}). "
                   "Any non-loopback host needs a password (`monitor web passwd`).")
@click.pass_context
def web_command(ctx: click.Context, http: str | None) -> None:
    """Serve the web interface without polling: for a machine where the daemon
    runs elsewhere on a shared database, or not at all. Edits made on the pages
    tell a daemon on the same database to reload, as the CLI's edits do.
    `monitor run --http` serves the same pages from the daemon itself.

    \b
    Examples:
      monitor web
      monitor web --http 127.0.0.1:8081
      monitor web passwd && monitor web --http 0.0.0.0:8080
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.config.listen import bind, parse_listen
    from monitor.web.auth import guard_for

    app: App = ctx.obj
    config = app.config()
    host, port = parse_listen(http) if http else (config.http or parse_listen(DEFAULT_LISTEN))
    guard = guard_for(host, port, config.dir)
    sock = bind(host, port)
    click.echo(f"serving http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}/ "
               "(Ctrl-C to stop)", err=True)
    asyncio.run(_serve(app, config, guard, sock))


async def _serve(app: App, config, guard, sock) -> None:
    from monitor.config.paths import DatabaseURL
    from monitor.ingest.pipeline import utc_now
    from monitor.read.status import cluster_view
    from monitor.runtime.metrics import Metrics
    from monitor.store.database import Store, StoreThread
    from monitor.store.outbox import counts
    from monitor.web.app import create_app
    from monitor.web.context import WebContext
    from monitor.web.server import WebServer

    store = StoreThread(app.db_path)
    metrics = Metrics()

    async def refresh() -> None:
        """Feeds by status and alerts pending, as the database says now."""
        by_status: dict[str, int] = {}
        for state in await store.call(Store.feed_states):
            by_status[state.status] = by_status.get(state.status, 0) + 1
        metrics.set_feed_statuses(by_status)
        metrics.set_alerts_pending((await store.call(counts)).get("pending", 0))
        if isinstance(app.db_path, DatabaseURL):
            view = await store.call(cluster_view, utc_now())
            queue = view["queue"] or {"waiting": 0, "running": 0, "oldest_waiting_age": None}
            metrics.set_cluster(view["workers_alive"], queue["waiting"], queue["running"],
                                queue["oldest_waiting_age"])

    await refresh()
    context = WebContext(store=store, config_dir=config.dir, db_path=app.db_path, guard=guard,
                         metrics=metrics, timezone=config.timezone, refresh_metrics=refresh)
    server = WebServer(create_app(context), sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.stop()
        store.close()


@web_command.command("passwd")
@click.pass_obj
def passwd_command(app: App) -> None:
    """Set the web interface's password (stored as a scrypt hash in the config
    folder, file web-password, mode 0600). Asks twice on a terminal, reads one
    line from stdin otherwise. Logged-in browsers are logged out.

    \b
    Examples:
      monitor web passwd
      printf '%s\\n' "$WEB_PASSWORD" | monitor web passwd
    """
    from monitor.errors import ConfigError
    from monitor.web.auth import MIN_PASSWORD, write_password

    if sys.stdin.isatty():
        password = click.prompt("New web password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must be at least {MIN_PASSWORD} characters")
    try:
        path = write_password(app.config_dir, password)
    except (ConfigError, OSError) as exc:
        raise UsageError(f"cannot store the web password: {exc}") from None
    click.echo(f"web password set in {path}; restart `monitor run`/`monitor web` to use it")


COMMANDS = [web_command]
