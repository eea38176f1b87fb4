"""Today: matched stories to triage, newest first, and one story in full."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.errors import MonitorError
from monitor.web.forms import TEMPLATES, back, context_of, post, render

PERIODS = {"today": "since midnight", "1d": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
           "all": "all time"}
STATES = {"open": "to triage", "relevant": "marked relevant", "false_positive": "false positives",
          "all": "all"}
SEVERITIES = ("critical", "warning", "info")
_MARKED = re.compile(r"\[\[(.+?)\]\]", re.S)


def marked(snippet: str | None) -> Markup:
    """A stored snippet with its [[hits]] as <mark>; everything else escaped."""
    text = str(escape(snippet or ""))
    return Markup(_MARKED.sub(lambda m: f"<mark>{m.group(1)}</mark>", text))


def highlighted(text: str | None, hits: list[dict[str, Any]], field: str) -> Markup:
    """TEXT (one field of a story) escaped, with the spans of FIELD's hits marked."""
    text = text or ""
    spans = sorted({(h["start"], h["end"]) for h in hits if h["field"] == field
                    and 0 <= h["start"] < h["end"] <= len(text)})
    out, at = [], 0
    for start, end in spans:
        if start < at:
            continue
        out.append(str(escape(text[at:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        at = end
    out.append(str(escape(text[at:])))
    return Markup("".join(out))


TEMPLATES.env.filters["marked"] = marked


def routes() -> list[Any]:
    return [Route("/today", today), Route("/story/{story_id:int}", story),
            post("/story/{story_id:int}/false-positive", false_positive),
            post("/story/{story_id:int}/relevant", relevant)]


def _since(period: str, now: datetime, tz: str) -> datetime | None:
    from monitor.read.status import local_midnight

    if period == "today":
        return local_midnight(now, tz)
    if period == "all":
        return None
    return now - timedelta(days=int(period.removesuffix("d")))


async def today(request: Request) -> Response:
    from monitor.read.search import list_matches
    from monitor.read.triage import group_stories
    from monitor.store.matches import match_facets

    context = context_of(request)
    query = request.query_params
    filters = {
        "rule": query.get("rule") or None, "feed": query.get("feed") or None,
        "language": query.get("language") or None,
        "severity": query.get("severity") if query.get("severity") in SEVERITIES else None,
    }
    period = query.get("period") if query.get("period") in PERIODS else "today"
    state = query.get("state") if query.get("state") in STATES else "open"
    since = _since(period, context.clock(), context.timezone)
    rows = await context.store.call(list_matches, since=since, triage=state, limit=2000, **filters)
    facets = await context.store.call(match_facets)
    stories = group_stories(rows)
    return render(request, "today.html", title="Today", active="today", stories=stories,
                  filters=filters, period=period, state=state, periods=PERIODS, states=STATES,
                  severities=SEVERITIES, facets=facets, here=str(request.url.path) +
                  (f"?{request.url.query}" if request.url.query else ""))


async def story(request: Request) -> Response:
    from monitor.read.search import get_story

    context = context_of(request)
    found = await context.store.call(get_story, request.path_params["story_id"])
    if found is None:
        raise HTTPException(404, "There is no such story.")
    hits = [h for m in found["matches"] if m["current"] for h in m["hits"]]
    fields = [(name, highlighted(found.get(name), hits, name)) for name in ("title", "summary", "content")
              if found.get(name)]
    return render(request, "story.html", title=found["title"] or "Story", active="today",
                  story=found, fields=fields, here=request.url.path)


def _ids(story_id: int, form: FormData) -> list[int]:
    """The story and the copies the form names (the same story from other outlets)."""
    ids = [story_id]
    for value in form.getlist("copy"):
        if isinstance(value, str) and value.isdigit():
            ids.append(int(value))
    return ids


async def false_positive(request: Request, form: FormData) -> Response:
    """The same record `monitor mute` writes: the backtest and `rules eval` read it."""
    from monitor.read.search import mute

    context = context_of(request)
    reason = str(form.get("reason") or "").strip()[:500] or None
    muted = 0
    try:
        for entry_id in _ids(request.path_params["story_id"], form):
            done = await context.store.call(mute, entry_id, rule=None, reason=reason, now=context.clock())
            muted += done["alerts_muted"]
    except MonitorError as exc:
        return back(request, form, "/today", problem=str(exc))
    note = f"Marked a false positive; {muted} unsent alert{'s' if muted != 1 else ''} stopped."
    return back(request, form, "/today", done=note)


async def relevant(request: Request, form: FormData) -> Response:
    from monitor.read.search import mark_relevant

    context = context_of(request)
    try:
        for entry_id in _ids(request.path_params["story_id"], form):
            await context.store.call(mark_relevant, entry_id, now=context.clock())
    except MonitorError as exc:
        return back(request, form, "/today", problem=str(exc))
    return back(request, form, "/today", done="Marked relevant.")
