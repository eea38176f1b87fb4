"""Feeds: health at a glance, sortable; add (with discovery), pause, resume, reset,
remove; OPML import and export. Config edits go through the same comment-keeping
writers as `monitor feeds`, then are applied like a reload."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.errors import MonitorError
from monitor.web.forms import apply_config, back, context_of, post, render


def routes() -> list[Any]:
    return [Route("/feeds", feeds_page), Route("/feeds.opml", export),
            post("/feeds/add", add), post("/feeds/import", import_opml),
            post("/feeds/{name}/{action:str}", feed_action)]


async def _config(context):
    from monitor.config.load import load_config

    return await asyncio.to_thread(load_config, context.config_dir)


async def _health(context, config) -> list[dict[str, Any]]:
    """The feeds' health rows, with the running daemon's per-feed storage failures
    (kept in its lock file, the one place it can say so when the database cannot)."""
    from monitor.read.feedhealth import feed_health
    from monitor.store.lock import daemon_lock

    not_stored = await asyncio.to_thread(daemon_lock(context.db_path).feed_problems)
    return await context.store.call(feed_health, config.feeds, context.clock(), not_stored)


async def feeds_page(request: Request) -> Response:
    from monitor.config.durations import format_duration
    from monitor.read.feedhealth import SORT_KEYS, sort_rows

    context = context_of(request)
    config = await _config(context)
    rows = await _health(context, config)
    sort = request.query_params.get("sort", "name")
    descending = request.query_params.get("desc") == "1"
    rows = sort_rows(rows, sort, descending)
    return render(request, "feeds.html", title="Feeds", active="feeds", feeds=rows, sort=sort,
                  descending=descending, sort_keys=SORT_KEYS, duration=format_duration,
                  candidates=None, form={})


async def add(request: Request, form: FormData) -> Response:
    """Add by a feed's URL or a page's: a page is searched for its feeds; when it lists
    several, the page asks which (the same discovery as `monitor feeds add`)."""
    from monitor.edit.feeds import add_feed, check_new_feed_options, name_from_title
    from monitor.ingest.discover import Candidate, DiscoveryError, discover
    from monitor.ingest.fetch import Fetcher
    from monitor.masking import mask_text, mask_url

    context = context_of(request)
    url = str(form.get("url") or "").strip()
    name = str(form.get("name") or "").strip() or None
    interval = str(form.get("interval") or "").strip() or None
    language = str(form.get("language") or "").strip() or None
    tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
    try:
        check_new_feed_options(url, name=name, interval=interval, language=language, tags=tags)
        config = await _config(context)
        chosen = Candidate(url=url, title=None, type="")
        if not form.get("as_given"):
            try:
                async with Fetcher(config.fetch) as fetcher:
                    found = await discover(url, fetcher, context.clock())
            except DiscoveryError as error:
                return back(request, form, "/feeds",
                            problem=f"could not fetch {mask_url(url)}: {mask_text(str(error))}")
            if not found:
                return back(request, form, "/feeds", problem=f"no feed found at {mask_url(url)}")
            if len(found) > 1:
                return await _choose(request, form, found)
            chosen = found[0]
        taken = {feed.name.casefold() for feed in config.feeds}
        feed = await asyncio.to_thread(
            add_feed, context.config_dir, url=chosen.url,
            name=name or name_from_title(chosen.title, chosen.url, taken),
            interval=interval, language=language, tags=tags)
    except MonitorError as exc:
        return back(request, form, "/feeds", problem=mask_text(str(exc)))
    note = await apply_config(context)
    return back(request, form, "/feeds", done=f"Added feed {feed.name}. {note}")


async def _choose(request: Request, form: FormData, found) -> Response:
    from monitor.config.durations import format_duration
    from monitor.read.feedhealth import SORT_KEYS

    context = context_of(request)
    config = await _config(context)
    rows = await _health(context, config)
    values = {key: str(form.get(key) or "") for key in ("name", "interval", "language", "tags")}
    return render(request, "feeds.html", title="Feeds", active="feeds", feeds=rows, sort="name",
                  descending=False, sort_keys=SORT_KEYS, duration=format_duration,
                  candidates=found, form=values)


async def feed_action(request: Request, form: FormData) -> Response:
    from monitor.edit.feeds import remove_feed

    context = context_of(request)
    name, action = request.path_params["name"], request.path_params["action"]
    config = await _config(context)
    if name not in {feed.name for feed in config.feeds}:
        return back(request, form, "/feeds", problem=f"no feed named {name!r}")
    try:
        if action == "remove":
            await asyncio.to_thread(remove_feed, context.config_dir, name)
            done = f"Removed feed {name}; its stories are kept."
        elif action in ("pause", "resume", "reset"):
            done = await context.store.call(_change_state, config.feeds, name, action, context.clock())
        else:
            return back(request, form, "/feeds", problem=f"unknown action {action!r}")
    except MonitorError as exc:
        return back(request, form, "/feeds", problem=str(exc))
    note = await apply_config(context)
    return back(request, form, "/feeds", done=f"{done} {note}")


def _change_state(store, feeds, name: str, action: str, now) -> str:
    """What `monitor feeds pause|resume|reset` does to the stored state (store thread)."""
    state = store.feed_state(name)
    if state is None:
        store.sync_feeds(feeds, now)
        state = store.feed_state(name)
    if action == "pause":
        if state.status in ("paused", "gone"):
            return f"Feed {name} is {state.status}; nothing to pause."
        store.set_feed_status(name, "paused")
        return f"Paused feed {name}."
    if action == "resume":
        if state.status != "paused":
            return f"Feed {name} is not paused."
        store.set_feed_status(name, "ok" if state.baselined else "new")
        return f"Resumed feed {name}."
    store.reset_feed(name)
    return f"Reset feed {name}: errors and backoff cleared."


async def import_opml(request: Request, form: FormData) -> Response:
    from monitor.edit.feeds import NewFeed, add_feeds
    from monitor.edit.opml import parse_opml

    context = context_of(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return back(request, form, "/feeds", problem="choose an OPML file to import")
    data = await upload.read()
    try:
        parsed = parse_opml(data, upload.filename or "upload.opml")
        if not parsed.feeds:
            return back(request, form, "/feeds", problem="no feed outlines (with an xmlUrl) in this file")
        report = await asyncio.to_thread(add_feeds, context.config_dir, [
            NewFeed(url=f.url, name=f.name, tags=f.tags, language=f.language) for f in parsed.feeds])
    except MonitorError as exc:
        return back(request, form, "/feeds", problem=str(exc))
    note = await apply_config(context) if report.added else ""
    invalid = len(report.invalid) + len(parsed.invalid)
    return back(request, form, "/feeds", done=f"Imported {len(report.added)}, skipped "
                f"{len(report.skipped)} already present, invalid {invalid}. {note}")


async def export(request: Request) -> Response:
    """OPML 2.0 of the configured feeds. As `monitor feeds export`: credentials are removed
    and secret query values (`?apikey=`) masked, unless `with_secrets=1` asks to keep
    them (an explicit choice, for moving the feeds to another reader)."""
    from monitor.edit.opml import export_opml
    from monitor.masking import mask_query_values
    from monitor.urls import strip_userinfo

    config = await _config(context_of(request))
    keep = request.query_params.get("with_secrets") == "1"
    feeds = config.feeds if keep else [
        replace(feed, url=mask_query_values(strip_userinfo(feed.url))) for feed in config.feeds]
    return Response(export_opml(feeds, "monitor feeds"), media_type="text/x-opml; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="feeds.opml"'})
