"""`monitor alerts add|remove|destinations`: where alerts go, with every secret masked."""

from __future__ import annotations

import os

import click

from monitor.alert.destinations import AlertsConfig, load_alerts
from monitor.cli.context import App, tell_daemon
from monitor.cli.output import echo_jsonl, echo_table, emit
from monitor.config.durations import format_duration
from monitor.edit.alerts import add_destination, remove_destination
from monitor.errors import UsageError
from monitor.models import Destination


@click.group("alerts")
def alerts_group() -> None:
    """Manage alert destinations (email, chat, webhooks through apprise) and the outbox.

    \b
    Examples:
      monitor alerts add - --name desk
      monitor alerts destinations
      monitor alerts test
      monitor alerts list --failed
      monitor alerts retry --all
    """


def load_destinations(app: App) -> AlertsConfig:
    """The folder's alert config, its warnings (never secrets) echoed to stderr."""
    alerts = load_alerts(app.config_dir, os.environ)
    for warning in alerts.warnings:
        emit(f"warning: {warning}", err=True)
    return alerts


def destination_row(destination: Destination) -> dict:
    """What a listing shows of a destination: safe_url, never the URL itself."""
    return {
        "name": destination.name,
        "safe_url": destination.safe_url,
        "tags": list(destination.tags),
        "mode": destination.mode,
        "digest_every": format_duration(destination.digest_every) if destination.digest_every else None,
        "digest_at": destination.digest_at,
        "quiet_hours": list(destination.quiet_hours) if destination.quiet_hours else None,
        "rate_limit": destination.rate_limit,
        "rate_window": format_duration(destination.rate_window) if destination.rate_limit else None,
    }


def _digest_text(row: dict) -> str:
    if row["digest_every"]:
        return f"every {row['digest_every']}"
    return f"daily {row['digest_at']}" if row["digest_at"] else "-"


@alerts_group.command("add")
@click.argument("url")
@click.option("--name", help="Destination name (default: the URL's scheme and host, "
                             "such as mailto-mail.example.org).")
@click.option("--tag", "tags", multiple=True,
              help="Receive only the alerts of rules with this tag (repeatable; none = every rule). "
                   "The tag admin also receives feed health alerts.")
@click.option("--mode", type=click.Choice(["immediate", "digest"]), default=None,
              help="immediate: one message per alert; digest: one message per period "
                   "(default: digest when --digest-every or --digest-at is given, else immediate).")
@click.option("--digest-every", metavar="DURATION", help="Send a digest this often, such as 6h.")
@click.option("--digest-at", metavar="HH:MM",
              help="Send a digest daily at this time (in the config's timezone).")
@click.pass_obj
def alerts_add(app: App, url: str, name: str | None, tags: tuple[str, ...], mode: str | None,
               digest_every: str | None, digest_at: str | None) -> None:
    """Add an apprise URL to alerts.toml, keeping its comments.

    URL - asks for the URL with hidden input on a terminal ("Paste the apprise
    URL"), or reads the first line of standard input when piped, so a password
    or token stays out of your shell history and off the screen. A ${NAME} in the URL is kept as
    a reference to a secret (secrets.toml, a systemd credential or the
    environment). The URL is checked before anything is written, and never
    printed: output shows it with its secrets masked.

    \b
    Examples:
      monitor alerts add 'mailtos://alerts:${SMTP_PASSWORD}@mail.example.org?to=desk@example.org'
      monitor alerts add - --name telegram --tag drones < telegram-url.txt
      monitor alerts add 'json://hooks.example.org/monitor' --mode digest --digest-at 08:00
      monitor alerts add 'ntfys://${NTFY_TOKEN}@ntfy.example.org/ops' --tag admin
    """
    if digest_every is not None and digest_at is not None:
        raise click.UsageError("use --digest-every or --digest-at, not both")
    if url == "-":
        url = _read_url()
    if mode is None:
        mode = "digest" if digest_every is not None or digest_at is not None else "immediate"
    destination = add_destination(app.config_dir, url, name=name, tags=tags, mode=mode,
                                  digest_every=digest_every, digest_at=digest_at, env=os.environ)
    emit(f"added destination {destination.name} ({destination.safe_url})")
    tell_daemon(app)


@alerts_group.command("remove")
@click.argument("name")
@click.pass_obj
def alerts_remove(app: App, name: str) -> None:
    """Remove a destination from alerts.toml; alerts already sent or queued stay in the database.

    \b
    Example:
      monitor alerts remove newsroom-mail
    """
    remove_destination(app.config_dir, name)
    emit(f"removed destination {name}")
    tell_daemon(app)


@alerts_group.command("destinations")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one destination per line.")
@click.pass_obj
def alerts_destinations(app: App, as_json: bool) -> None:
    """List where alerts go: name, URL (secrets masked), tags, mode, digest, quiet hours, rate limit.

    \b
    Examples:
      monitor alerts destinations
      monitor alerts destinations --json | jq -r .name
    """
    rows = [destination_row(destination) for destination in load_destinations(app).destinations]
    if as_json:
        echo_jsonl(rows)
        return
    if not rows:
        emit("no destinations: alerts are printed to the console and kept in the database; "
             "add one with `monitor alerts add URL`", err=True)
        return
    echo_table(
        ["NAME", "MODE", "DIGEST", "TAGS", "QUIET HOURS", "RATE LIMIT", "URL"],
        [[r["name"], r["mode"], _digest_text(r), ",".join(r["tags"]) or "(all rules)",
          "-".join(r["quiet_hours"]) if r["quiet_hours"] else "-",
          f"{r['rate_limit']}/{r['rate_window']}" if r["rate_limit"] else "-", r["safe_url"]]
         for r in rows],
    )


def _read_url() -> str:
    """The URL for `alerts add -`: asked for with hidden input on a terminal (a pasted
    password is never echoed), else the first line of standard input."""
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        url = click.prompt("Paste the apprise URL (input hidden)", hide_input=True,
                           prompt_suffix=": ", default="", show_default=False, err=True).strip()
    else:
        url = stdin.readline().strip()
    if not url:
        raise UsageError("no URL on standard input: `monitor alerts add -` reads it from the first line")
    return url


COMMANDS = [alerts_group]
