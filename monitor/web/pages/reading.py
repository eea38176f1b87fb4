"""Search (full text with word forms, as `monitor search`) and Report (the chart and
tables of `monitor report`)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.errors import ConfigError, MonitorError
from monitor.web.forms import context_of, render

PERIODS = {"1d": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days",
           "all": "all time"}
REPORT_PERIODS = {"1d": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days"}
MAX_QUERY = 1000  # characters


def routes() -> list[Any]:
    return [Route("/search", search_page), Route("/report", report_page),
            Route("/report.html", report_file), Route("/report/chart.svg", report_chart)]


def _since(context, period: str):
    if period == "all":
        return None
    return context.clock() - timedelta(days=int(period.removesuffix("d")))


async def search_page(request: Request) -> Response:
    from monitor.read.search import index_pending, needs_watch, parse_search, search

    context = context_of(request)
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    period = request.query_params.get("period", "30d")
    period = period if period in PERIODS else "30d"
    feed = request.query_params.get("feed") or None
    results, problem = None, None
    if query:
        try:
            watch = None
            if needs_watch(parse_search(query)):
                from monitor.config.load import load_config
                from monitor.ingest.prepare import load_watch_for

                watch = await asyncio.to_thread(lambda: load_watch_for(load_config(context.config_dir)))

            def index(store):
                try:
                    index_pending(store)  # lazily, as `monitor search` does
                except sqlite3.OperationalError:
                    pass  # busy: search what is indexed

            await context.store.call(index)
            results = await context.read(search, query, since=_since(context, period), feed=feed,
                                         limit=100, watch=watch)
        except (MonitorError, ConfigError) as exc:
            problem = str(exc)
    return render(request, "search.html", title="Search", active="search", query=query, period=period,
                  periods=PERIODS, feed=feed or "", results=results, problem=problem)


async def _report(request: Request):
    from monitor.read.report import build_report

    context = context_of(request)
    period = request.query_params.get("period", "7d")
    period = period if period in REPORT_PERIODS else "7d"
    now = context.clock()
    report = await context.read(build_report, since=_since(context, period), now=now,
                                tz=context.timezone)
    return report, period


async def report_page(request: Request) -> Response:
    report, period = await _report(request)
    return render(request, "report.html", title="Report", active="report", report=report,
                  period=period, periods=REPORT_PERIODS)


async def report_chart(request: Request) -> Response:
    """The chart as an image of its own: its styles are inline, which the pages' CSP
    forbids; as an image it can run nothing and fetch nothing."""
    from monitor.read.report import chart_svg

    report, _ = await _report(request)
    svg = await asyncio.to_thread(chart_svg, report)
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + svg, media_type="image/svg+xml",
                    headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                             "cache-control": "no-store"})


async def report_file(request: Request) -> Response:
    """The self-contained HTML report of `monitor report --html`, to download."""
    from monitor.read.report import render_html

    report, _ = await _report(request)
    page = await asyncio.to_thread(render_html, report)
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="monitor-report.html"'})
