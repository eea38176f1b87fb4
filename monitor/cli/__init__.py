"""The `monitor` command line: a thin layer that parses arguments, calls the
library and formats the result (a table on a terminal, JSON Lines with --json).

Global options go before the command: `monitor --config DIR --db PATH COMMAND`.
Exit codes: 0 success, 1 could not run (or nothing found where that matters),
2 usage or configuration error. A user mistake never shows a traceback.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys

import click

from monitor import __version__
from monitor.cli.context import App, setup_logging
from monitor.errors import MonitorError

# Each command's module, imported only when the command runs (or for --help), so a
# command that sends nothing never pays for apprise, the matcher or httpx. Some
# modules add commands to another module's group: both are listed, adder first.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "alerts": ("alerts_outbox", "alerts"),
    "config": ("config_cmd",),
    "demo": ("demo",),
    "feeds": ("feeds_edit", "feeds"),
    "init": ("config_cmd",),
    "match": ("rules",),
    "matches": ("reading",),
    "mute": ("mute",),
    "report": ("reading",),
    "rules": ("terms", "rules"),
    "run": ("run",),
    "search": ("reading",),
    "show": ("reading",),
    "status": ("status",),
    "stories": ("stories",),
    "systemd-unit": ("systemd_cmd",),
    "terms": ("terms",),
    "web": ("web",),
    "unmute": ("mute",),
    "worker": ("worker",),
}


# Each command's one-line summary for `monitor --help`, so listing the commands imports
# none of their modules (tests/test_cli_help_light.py checks these against the commands).
COMMAND_SUMMARIES: dict[str, str] = {
    'alerts': 'Manage alert destinations (email, chat, webhooks through apprise) and the outbox.',
    'config': "Inspect the configuration folder, or push it to a cluster's database.",
    'demo': 'See the whole system work on sample feeds: no network, no setup, nothing left behind.',
    'feeds': 'List feed health; add, import, export, remove, pause, resume or reset feeds.',
    'init': 'Write a complete, commented default config folder to DIRECTORY.',
    'match': 'Match a feed file or JSON Lines items against the watch rules.',
    'matches': 'List stored matches, newest first, with the snippet that explains each.',
    'mute': ("Mark a story's match as a false positive: its unsent alerts are muted and it sends nothing "
        "more; `monitor rules backtest` lists it so the rule can be fixed."),
    'report': ("What was caught: matches per day, per rule and per outlet, and the top stories (copies "
        "from several outlets counted as one, ranked by outlets, then score)."),
    'rules': 'Check, list, try, score (eval), backtest, enable and disable the watch rules (watch.toml).',
    'run': 'Poll the configured feeds on their schedule until stopped (SIGTERM or Ctrl-C).',
    'search': 'Search stored stories, newest first; exit 1 when nothing is found.',
    'show': 'Show one story: its text with the hits marked, its matches and its alerts.',
    'status': ("Show whether the daemon runs and is healthy, its feeds, today's stories and matches, the "
        "alert queue, today's alerted stories that other outlets also reported (sent once), and any "
        "config error the daemon refused."),
    'stories': 'List stored stories, newest first.',
    'systemd-unit': 'Print the systemd unit for this installation (sandboxed, Type=notify, reload on SIGHUP).',
    'terms': 'List and edit the names (aliases) of the watched entities in watch.toml.',
    'unmute': "Undo `monitor mute`: the story's matches count again (in `matches`, `report` and backtests).",
    'web': ("Serve the web interface without polling: for a machine where the daemon runs elsewhere on "
        "a shared database, or not at all."),
    'worker': 'Poll feeds and send alerts as one worker of a cluster that shares a PostgreSQL database.',
}


class MonitorGroup(click.Group):
    """Loads commands lazily, and turns the library's user-facing errors into one
    message and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        modules = [importlib.import_module(f"monitor.cli.{m}") for m in COMMAND_MODULES.get(name, ())]
        return next((c for m in modules for c in m.COMMANDS if c.name == name), None)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help from COMMAND_SUMMARIES, as click would write it."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # a stand-in command per name shortens its summary exactly as the real one would
        rows = [(name, click.Command(name, help=COMMAND_SUMMARIES.get(name, "")).get_short_help_str(limit))
                for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except sqlite3.Error as exc:  # a corrupt, locked or unwritable database: a situation
            _fail(ctx, f"database {_db_path(ctx)}: {_sqlite_message(exc)}", 1)
        except BrokenPipeError:  # `monitor stories | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
            ctx.exit(0)
        except OSError as exc:  # a read-only folder, a full disk, a port in use
            _fail(ctx, os_error_message(exc), 1)
        except KeyboardInterrupt:
            click.echo("", err=True)
            ctx.exit(130)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    """One line (plus any context lines the error carries), never a traceback."""
    from monitor.cli.output import escape_controls

    click.echo(f"monitor: error: {escape_controls(message)}", err=True)
    ctx.exit(code)


def _db_path(ctx: click.Context) -> str:
    app = ctx.obj
    return str(app.db_path) if isinstance(app, App) else "(unknown)"


def _sqlite_message(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        return f"{text} (check the permissions of the file and its folder)"
    if "malformed" in text or "not a database" in text:
        return f"{text} (restore it from a backup, or move it aside and run `monitor run --once` to start afresh)"
    if "disk" in text and "full" in text:
        return f"{text} (free some space)"
    return text


def os_error_message(exc: OSError) -> str:
    """`cannot ... FILE: reason`, in words, naming the file or address concerned."""
    reason = (exc.strerror or str(exc)).lower()
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="monitor")
@click.option("--config", "config_dir", metavar="DIR", envvar="MONITOR_CONFIG",
              help="Config folder (default: $MONITOR_CONFIG, $CONFIGURATION_DIRECTORY, "
                   "else ~/.config/monitor, created from the shipped defaults).")
@click.option("--db", "db_path", metavar="PATH", envvar="MONITOR_DB",
              help="SQLite database (default: $MONITOR_DB, $STATE_DIRECTORY/monitor.db, "
                   "else ~/.local/share/monitor/monitor.db).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default=None, help="Log level (default: the config's log_level, else info).")
@click.option("--log-format", type=click.Choice(["kv", "json"]), default="kv", show_default=True,
              help="Log lines as key=value or as JSON objects (stderr).")
@click.pass_context
def main(ctx: click.Context, config_dir: str | None, db_path: str | None,
         log_level: str | None, log_format: str) -> None:
    """Watch news feeds for the stories you care about.

    \b
    Examples:
      monitor init ~/watch --no-feeds
      monitor --config ~/watch feeds add https://example.org/rss/
      monitor --config ~/watch run --once
      monitor --config ~/watch stories --since 1d
    """
    from monitor.config.paths import resolve_config_dir, resolve_db_path
    from monitor.runtime.privileges import drop_to_owner

    # Root acting on a service's files becomes their owner first, so it never
    # leaves root-owned database, -wal, -shm or lock files behind.
    drop_to_owner(resolve_db_path(db_path, os.environ), resolve_config_dir(config_dir, os.environ)[0])
    typed = ctx.get_parameter_source("config_dir") == click.core.ParameterSource.COMMANDLINE
    ctx.obj = App(config_flag=config_dir, db_flag=db_path, log_level=log_level, config_typed=typed)
    setup_logging(log_level or "info", log_format)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
