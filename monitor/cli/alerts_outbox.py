"""`monitor alerts test|list|retry`: the outbox seen and steered from the command line."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import click

from monitor.cli.alerts import alerts_group
from monitor.cli.context import App
from monitor.cli.output import echo_jsonl, echo_table, emit
from monitor.errors import UsageError
from monitor.store.lock import daemon_lock


@alerts_group.command("test")
@click.option("--tag", "tags", multiple=True, help="Only destinations with this tag (repeatable).")
@click.pass_obj
def alerts_test(app: App, tags: tuple[str, ...]) -> None:
    """Send a test message to each destination and report success or the error.

    Exit 0 when every destination accepted it, 1 otherwise.

    \b
    Examples:
      monitor alerts test
      monitor alerts test --tag admin
    """
    from monitor.alert.apprise_send import send
    from monitor.alert.notices import render_test
    from monitor.ingest.prepare import prepare

    alerting = prepare(app.config()).alerting
    wanted = {t.casefold() for t in tags}
    destinations = [d for d in alerting.destinations
                    if not wanted or wanted & {t.casefold() for t in d.tags}]
    if not destinations:
        raise UsageError("no destination to test" + (f" with tag {', '.join(tags)}" if tags else
                                                     ": add one with `monitor alerts add URL`"))

    async def run_all():
        now = datetime.now(UTC)
        return await asyncio.gather(*(
            send(d, render_test(d.name, alerting.tz, now), timeout=alerting.settings.send_timeout)
            for d in destinations))

    failed = 0
    for destination, outcome in zip(destinations, asyncio.run(run_all()), strict=False):
        if outcome.ok:
            emit(f"{destination.name}: ok ({destination.safe_url})")
        else:
            failed += 1
            emit(f"{destination.name}: failed: {outcome.error}")
    sys.exit(1 if failed else 0)


@alerts_group.command("list")
@click.option("--pending", "status", flag_value="pending", help="Only alerts waiting to be sent.")
@click.option("--failed", "status", flag_value="failed", help="Only failed (retrying) and dead alerts.")
@click.option("--sent", "status", flag_value="sent", help="Only sent alerts.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one alert per line.")
@click.pass_obj
def alerts_list(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """List alerts, newest first: one per story and destination, naming every rule
    it matched there, with its delivery status and why a send failed.

    \b
    Examples:
      monitor alerts list --pending
      monitor alerts list --failed --json
    """
    from monitor.alert.outbox import list_alerts
    from monitor.store.database import Store

    statuses = {"pending": ["pending"], "failed": ["failed", "dead"], "sent": ["sent"]}.get(status)
    store = Store.open(app.db_path, readonly=True)
    try:
        rows = list_alerts(store, statuses, limit)
    finally:
        store.close()
    if as_json:
        echo_jsonl(rows)
        return
    echo_table(["ID", "STATUS", "DESTINATION", "RULES", "DUE", "TRIES", "STORY", "ALSO REPORTED BY", "ERROR"],
               [[r["id"], r["status"], r["destination"], _rules_cell(r), r["due_at"],
                 r["attempts"], r["title"], ", ".join(r["also_reported_by"]), r["last_error"] or ""]
                for r in rows])


def _rules_cell(row: dict) -> str:
    """The rules one story's alert names, most severe first; a new one in an update marked."""
    if not row["rules"]:
        return row["kind"]
    return ", ".join(f"{rule} (new)" if rule in row["new_rules"] else rule for rule in row["rules"])


@alerts_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every failed and dead alert.")
@click.pass_obj
def alerts_retry(app: App, ids: tuple[int, ...], retry_all: bool) -> None:
    """Make failed and dead alerts due now (their age starts again) and send them.

    With no daemon running they are sent at once, and the exit code is 1 when
    a send failed again (the reason is printed); a running daemon sends them
    within seconds.

    \b
    Examples:
      monitor alerts retry 42
      monitor alerts retry --all
    """
    from monitor.ingest.pipeline import utc_now
    from monitor.ingest.prepare import prepare
    from monitor.store.database import Store, StoreThread
    from monitor.store.outbox import retry

    if bool(ids) == retry_all:
        raise UsageError("give alert IDs or --all (not both)")
    alerting = prepare(app.config()).alerting
    store = Store.open(app.db_path)
    try:
        count = retry(store, list(ids) if ids else None, utc_now())
    finally:
        store.close()
    emit(f"{count} alert{'s' if count != 1 else ''} due now")
    lock = daemon_lock(app.db_path)
    if count == 0 or lock.held_by_other():
        if count:
            emit("the running daemon sends them within seconds")
        return

    async def deliver():
        thread = StoreThread(app.db_path)
        try:
            return await alerting.dispatcher(thread, utc_now).dispatch_due()
        finally:
            thread.close()

    with lock:
        report = asyncio.run(deliver())
    emit(f"sent {report.sent}, failed {report.failed}"
         + (f", cancelled {report.cancelled}" if report.cancelled else ""))
    for name, error in sorted(report.errors.items()):
        emit(f"alerts to {name} failed: {error}", err=True)
    if report.failed:
        sys.exit(1)


COMMANDS: list = []  # these commands join the `alerts` group from monitor.cli.alerts
