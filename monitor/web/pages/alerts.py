"""Alerts: destinations (secrets masked: apprise's privacy form, never the URL),
a test message, and the outbox by state with retry of failed and dead alerts."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.errors import MonitorError
from monitor.web.forms import back, context_of, post, render

STATES = ("failed", "dead", "pending", "sent", "muted", "cancelled", "duplicate", "all")


MAX_PROBLEM_LINES = 6  # a message travels in the redirect's link: keep it short


def config_problem(exc: MonitorError) -> str:
    """The configuration error with its problems (each names its file, line and column):
    the first line alone ("2 problems in the configuration:") tells nothing."""
    lines = str(exc).splitlines()
    if len(lines) > MAX_PROBLEM_LINES:
        lines = [*lines[:MAX_PROBLEM_LINES - 1],
                 f"... and {len(lines) - MAX_PROBLEM_LINES + 1} more: see `monitor config check`"]
    return "\n".join(lines)


def routes() -> list[Any]:
    return [Route("/alerts", alerts_page), post("/alerts/test", send_test),
            post("/alerts/retry", retry_alerts)]


async def _alerting(context):
    """The destinations and policy as the daemon would build them from the config folder."""
    from monitor.config.load import load_config
    from monitor.ingest.prepare import prepare

    def build():
        return prepare(load_config(context.config_dir)).alerting

    return await asyncio.to_thread(build)


async def alerts_page(request: Request) -> Response:
    from monitor.alert.outbox import list_alerts
    from monitor.store.outbox import counts

    context = context_of(request)
    state = request.query_params.get("state", "failed")
    state = state if state in STATES else "failed"
    statuses = None if state == "all" else (state,)
    rows = await context.store.call(list_alerts, statuses, 200)
    totals = await context.store.call(counts)
    problem = None
    destinations: list[Any] = []
    try:
        destinations = list((await _alerting(context)).destinations)
    except MonitorError as exc:
        problem = config_problem(exc)
    return render(request, "alerts.html", title="Alerts", active="alerts", alerts=rows, state=state,
                  states=STATES, totals=totals, destinations=destinations, config_problem=problem,
                  here=f"/alerts?state={state}")


async def send_test(request: Request, form: FormData) -> Response:
    """A test message to one destination (or all), as `monitor alerts test` sends it."""
    from monitor.alert.apprise_send import send
    from monitor.alert.notices import render_test

    context = context_of(request)
    try:
        alerting = await _alerting(context)
    except MonitorError as exc:
        return back(request, form, "/alerts", problem=config_problem(exc))
    wanted = str(form.get("name") or "")
    chosen = [d for d in alerting.destinations if not wanted or d.name == wanted]
    if not chosen:
        return back(request, form, "/alerts", problem="no such destination")
    now = context.clock()
    outcomes = await asyncio.gather(*(
        send(d, render_test(d.name, alerting.tz, now), timeout=alerting.settings.send_timeout)
        for d in chosen))
    lines = [f"{d.name}: {'ok' if o.ok else 'failed: ' + str(o.error)}" for d, o in zip(chosen, outcomes, strict=False)]
    key = "done" if all(o.ok for o in outcomes) else "problem"
    return back(request, form, "/alerts", **{key: "Test message: " + "; ".join(lines)})


async def retry_alerts(request: Request, form: FormData) -> Response:
    """Failed and dead alerts become due now; the daemon sends them within seconds, and
    with no daemon on this database they are sent at once (as `monitor alerts retry`)."""
    from monitor.store.outbox import retry

    context = context_of(request)
    ids = None
    if not form.get("all"):
        ids = [int(v) for v in form.getlist("id") if isinstance(v, str) and v.isdigit()]
        if not ids:
            return back(request, form, "/alerts", problem="tick the alerts to retry, or retry all")
    count = await context.store.call(retry, ids, context.clock())
    note = f"{count} alert{'s' if count != 1 else ''} due now."
    if count and context.reload is None:
        note += " " + await _deliver_without_daemon(context)
    elif count:
        note += " The daemon sends them within seconds."
    return back(request, form, "/alerts", done=note)


async def _deliver_without_daemon(context) -> str:
    from monitor.store.lock import daemon_lock

    lock = daemon_lock(context.db_path)
    if lock.held_by_other():
        return "The running daemon sends them within seconds."
    try:
        alerting = await _alerting(context)
    except MonitorError as exc:
        return f"Not sent: {config_problem(exc)}"
    with lock:
        report = await alerting.dispatcher(context.store, context.clock).dispatch_due()
    return f"Sent {report.sent}, failed {report.failed}."
