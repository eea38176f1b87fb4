"""Watch: entities, term groups and rules, and an editor for watch.toml.

The editor works on the file's own text, so comments stay where the person put
them. Before saving: "Check" validates (an error at its line and column),
"Try" matches a text with the edited rules, "Backtest" runs the edit and the
rules in force over the stored stories of a period and lists what the edit
would add and remove (and whether each false positive still matches). "Save"
writes it only when valid and unchanged meanwhile, then applies it the way a
reload does: a bad edit keeps the old watch. Rules are switched on and off
with the same comment-keeping editor as `monitor rules enable|disable`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.errors import ConfigError, MonitorError
from monitor.web.forms import apply_config, back, context_of, post, render

PERIODS = {"1d": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days"}
MAX_TEXT = 512 * 1024  # characters of watch.toml the editor takes


def routes() -> list[Any]:
    return [Route("/watch", watch_page), post("/watch", edit), post("/watch/rule/{name}", toggle_rule),
            post("/watch/entity/{name}", edit_entity)]


def _watch_path(context) -> Path:
    return context.config_dir / "watch.toml"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _parse(text: str, path: Path):
    from monitor.match.watch import parse_watch_text

    return parse_watch_text(text, path)


async def watch_page(request: Request) -> Response:
    context = context_of(request)
    text = await asyncio.to_thread(_read, _watch_path(context))
    return await _page(request, text=text, original=text)


async def _page(request: Request, *, text: str, original: str, status_code: int = 200,
                **values: Any) -> Response:
    """The page for TEXT (the editor's content); the summary shows the file in force."""
    context = context_of(request)
    path = _watch_path(context)
    watch, problem = None, None
    try:
        watch = await asyncio.to_thread(_parse, original, path)
    except ConfigError as exc:
        problem = str(exc)
    values.setdefault("period", "7d")
    return render(request, "watch.html", status_code=status_code, title="Watch", active="watch",
                  watch=watch, file_problem=problem, text=text, original=original, periods=PERIODS,
                  path=path, **values)


async def edit(request: Request, form: FormData) -> Response:
    """Check, try, backtest or save the edited text, as the button pressed says."""
    context = context_of(request)
    path = _watch_path(context)
    text = str(form.get("text") or "").replace("\r\n", "\n")
    original = str(form.get("original") or "").replace("\r\n", "\n")
    action = str(form.get("action") or "check")
    period = str(form.get("period") or "7d")
    period = period if period in PERIODS else "7d"
    sample = str(form.get("sample") or "")
    values: dict[str, Any] = {"period": period, "sample": sample}
    if len(text) > MAX_TEXT:
        return await _page(request, text=text[:MAX_TEXT], original=original, status_code=413,
                           error={"message": f"the watch file is limited to {MAX_TEXT // 1024} KB here"},
                           **values)
    try:
        watch = await asyncio.to_thread(_parse, text, path)
    except ConfigError as exc:
        return await _page(request, text=text, original=original, status_code=422,
                           error=_located(exc), **values)
    if action == "save":
        from monitor.edit.watch import replace_watch_text

        try:
            await asyncio.to_thread(replace_watch_text, path, text, expected_old=original)
        except (ConfigError, MonitorError) as exc:
            return await _page(request, text=text, original=original, status_code=409,
                               error={"message": str(exc)}, **values)
        note = await apply_config(context)
        return back(request, form, "/watch", done=f"Saved {path.name}. {note}")
    values["valid"] = True
    if action == "try":
        values["tried"] = await asyncio.to_thread(_try, watch, sample)
    elif action == "backtest":
        values["backtest"] = await _backtest(context, watch, period)
    return await _page(request, text=text, original=original, **values)


def _located(exc: ConfigError) -> dict[str, Any]:
    """The first problem's line, column and caret; every problem's message."""
    errors = getattr(exc, "errors", None) or [exc]
    first = errors[0]
    message = "; ".join(getattr(e, "message", str(e)) for e in errors)
    return {"message": message, "line": first.line, "column": first.column, "context": first.context}


def _try(watch, sample: str) -> list[dict[str, Any]]:
    from monitor.match import Matcher, as_dict

    matcher = Matcher.compile(watch)
    title, _, summary = sample.partition("\n")
    return [as_dict(m) for m in matcher.match(title=title, summary=summary.strip())]


async def _backtest(context, edited, period: str) -> dict[str, Any]:
    from monitor.config.load import load_config
    from monitor.match import Matcher
    from monitor.read.backtest import compare, rules_matcher

    config = await asyncio.to_thread(load_config, context.config_dir)
    tags_by_feed = {f.name: f.tags for f in config.feeds}
    try:
        in_force = await asyncio.to_thread(_parse, _read(_watch_path(context)), _watch_path(context))
        before = rules_matcher(Matcher.compile(in_force), tags_by_feed)
    except ConfigError:
        before = None  # the file in force is broken: compare with what was recorded
    after = rules_matcher(Matcher.compile(edited), tags_by_feed)
    since = context.clock() - timedelta(days=int(period.removesuffix("d")))
    result = await context.read(compare, before, after, since=since)
    result["since"] = since
    return result


async def toggle_rule(request: Request, form: FormData) -> Response:
    from monitor.edit.watch import set_rule_enabled

    context = context_of(request)
    name = request.path_params["name"]
    enabled = form.get("enabled") == "1"
    try:
        changed = await asyncio.to_thread(set_rule_enabled, _watch_path(context), name, enabled)
    except MonitorError as exc:
        return back(request, form, "/watch", problem=str(exc))
    if not changed:
        return back(request, form, "/watch", done=f"Rule {name} was already {'on' if enabled else 'off'}.")
    note = await apply_config(context)
    return back(request, form, "/watch", done=f"Rule {name} switched {'on' if enabled else 'off'}. {note}")


async def edit_entity(request: Request, form: FormData) -> Response:
    """Add an alias, remove one, or add an exclusion: `monitor terms add|remove|exclude`."""
    from monitor.edit.watch import add_aliases, add_exclude, remove_aliases

    context = context_of(request)
    path = _watch_path(context)
    name = request.path_params["name"]
    value = str(form.get("value") or "").strip()
    action = str(form.get("action") or "")
    if not value:
        return back(request, form, "/watch", problem="type the alias or phrase first")
    try:
        if action == "add":
            changed = bool(await asyncio.to_thread(add_aliases, path, name, [value]))
            done = f"Added alias {value!r} to @{name}." if changed else f"@{name} already has {value!r}."
        elif action == "remove":
            await asyncio.to_thread(remove_aliases, path, name, [value])
            changed, done = True, f"Removed alias {value!r} from @{name}."
        elif action == "exclude":
            changed = await asyncio.to_thread(add_exclude, path, name, value)
            done = f"@{name} no longer counts inside {value!r}." if changed else f"{value!r} was excluded already."
        else:
            return back(request, form, "/watch", problem=f"unknown action {action!r}")
    except MonitorError as exc:
        return back(request, form, "/watch", problem=str(exc))
    note = await apply_config(context) if changed else ""
    return back(request, form, "/watch", done=f"{done} {note}".strip())
