"""Rendering pages, checked POST actions, login and error pages.

Every state-changing route is made with `post()`: it reads the form, refuses
it without the session's CSRF token, and hands the handler the form. A test
walks the routes and checks that every POST refuses a missing token.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from monitor.web.auth import Session

log = logging.getLogger("monitor.web")

Handler = Callable[[Request, FormData], Awaitable[Response]]
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
FLASH_KINDS = ("done", "problem")
MAX_LOGIN_FAILURES = 10  # wrong passwords in LOGIN_WINDOW, from anybody, before logins pause
LOGIN_WINDOW = 60.0  # seconds
NAV = (("today", "Today"), ("feeds", "Feeds"), ("watch", "Watch"), ("alerts", "Alerts"),
       ("search", "Search"), ("report", "Report"))


def _iso(value: Any) -> str:
    """An ISO time for <time datetime>, from a datetime or the store's text."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _shown(value: Any) -> str:
    """The same time as readable UTC text; app.js turns it into the viewer's local time."""
    text = _iso(value)
    if not text:
        return "never"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M UTC")


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _finalize(value: Any) -> Any:
    """Every value a template prints loses the control characters feed text may carry."""
    if isinstance(value, Markup):
        return Markup(_CONTROLS.sub("", value))
    if isinstance(value, str):
        return _CONTROLS.sub("", value)
    return value


TEMPLATES.env.finalize = _finalize
TEMPLATES.env.filters["iso"] = _iso
TEMPLATES.env.filters["shown"] = _shown


def session_of(request: Request) -> Session:
    return request.scope["state"]["session"]


def context_of(request: Request):
    return request.app.state.context


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """TEMPLATE with the values every page needs: the CSRF token, the menu, the login state."""
    guard = context_of(request).guard
    session = session_of(request)
    values.setdefault("title", template.removesuffix(".html").capitalize())
    served = {getattr(route, "path", "") for route in request.app.routes}
    page = {"csrf": guard.csrf_token(session), "flashes": _flashes(request),
            "nav": [(k, v) for k, v in NAV if f"/{k}" in served], "logged_in": session.logged_in,
            "needs_login": guard.needs_login, **values}
    response = TEMPLATES.TemplateResponse(request, template, page, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    return response


def post(path: str, handler: Handler, *, needs_csrf: bool = True) -> Route:
    """A POST route whose handler runs only for a form carrying this session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=200, max_part_size=1024 * 1024)
        token = form.get("csrf")
        if not context_of(request).guard.check_csrf(session_of(request), token if isinstance(token, str) else None):
            raise HTTPException(403, "This form has expired or came from another site. "
                                     "Go back, reload the page and try again.")
        return await handler(request, form)

    endpoint.needs_csrf = needs_csrf  # type: ignore[attr-defined]
    return Route(path, endpoint, methods=["POST"], name=handler.__name__)


def back(request: Request, form: FormData, default: str, **flash: str) -> RedirectResponse:
    """Redirect (303) to the form's `next` path on this site, else DEFAULT, with a message."""
    target = str(form.get("next") or default)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = default
    if flash:
        from urllib.parse import urlencode

        guard, session = context_of(request).guard, session_of(request)
        for key in FLASH_KINDS:
            if key in flash:
                flash[key + "_sig"] = guard.flash_signature(session, f"{key}:{flash[key]}")
        joiner = "&" if "?" in target else "?"
        target += joiner + urlencode(flash)
    return RedirectResponse(target, status_code=303)


def _flashes(request: Request) -> list[tuple[str, str]]:
    """The signed messages of the link (see `back`): ("done" or "problem", text)."""
    guard, session = context_of(request).guard, session_of(request)
    shown = []
    for key in FLASH_KINDS:
        text = request.query_params.get(key)
        signature = request.query_params.get(key + "_sig", "")
        if text and hmac.compare_digest(signature, guard.flash_signature(session, f"{key}:{text}")):
            shown.append((key, text))
    return shown


# --------------------------------------------------------------------------
# login
# --------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    if not context_of(request).guard.needs_login:
        return RedirectResponse("/today", status_code=303)
    return render(request, "login.html", title="Log in", next=_next(request.query_params.get("next")))


async def login(request: Request, form: FormData) -> Response:
    import asyncio
    import time

    from monitor.web.app import set_session_cookie

    guard = context_of(request).guard
    password = form.get("password")
    failures: list[float] = request.app.state.login_failures
    now = time.monotonic()
    failures[:] = [at for at in failures if now - at < LOGIN_WINDOW]
    if len(failures) >= MAX_LOGIN_FAILURES:
        return render(request, "login.html", status_code=429, title="Log in",
                      next=_next(form.get("next")), error="Too many wrong passwords: wait a minute.")
    right = (guard.needs_login and isinstance(password, str)
             and await asyncio.to_thread(guard.check_password, password))
    if not right:
        failures.append(now)
        log.warning("web login refused client=%s", request.client.host if request.client else "?")
        return render(request, "login.html", status_code=403, title="Log in",
                      next=_next(form.get("next")), error="Wrong password.")
    response = RedirectResponse(_next(form.get("next")), status_code=303)
    set_session_cookie(response, guard, guard.new_session(logged_in=True), request.scope)
    return response


async def logout(request: Request, form: FormData) -> Response:
    from monitor.web.app import set_session_cookie

    guard = context_of(request).guard
    response = RedirectResponse("/login" if guard.needs_login else "/today", status_code=303)
    set_session_cookie(response, guard, guard.new_session(logged_in=False), request.scope)
    return response


def _next(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/today"
    return text


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


async def error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 else "There is no page here."
    return _error(request, exc.status_code, detail, getattr(exc, "headers", None))


async def crash_page(request: Request, exc: Exception) -> Response:
    return _error(request, 500, "Something went wrong on the server; the log says what. "
                                "Nothing you typed was lost if you go back.", None)


def _error(request: Request, status: int, detail: str, headers: dict[str, str] | None) -> Response:
    try:
        response = render(request, "error.html", status_code=status, title=f"Error {status}",
                          status=status, detail=detail)
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        response = HTMLResponse(f"<h1>Error {status}</h1>", status_code=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def apply_config(context) -> str:
    """Apply an edited config folder as a reload does (a bad edit keeps the old config);
    without a daemon in this process, signal the one on this database, as the CLI does."""
    import asyncio

    if context.reload is not None:
        if await context.reload():
            return "Applied."
        return "The daemon refused the new config and keeps the previous one: see `monitor status`."
    from monitor.config.paths import DatabaseURL
    from monitor.store.lock import signal_daemon

    if isinstance(context.db_path, DatabaseURL):  # a cluster that runs pushed configs gets this one
        from monitor.edit.push import push_if_clustered
        from monitor.errors import MonitorError

        try:
            pushed = await asyncio.to_thread(push_if_clustered, context.config_dir, context.db_path)
        except MonitorError as error:
            return f"Saved, but not pushed to the cluster: {error}"
        if pushed is not None:
            return f"Pushed as config version {pushed.version}: every worker runs it within seconds."
    try:
        pid = await asyncio.to_thread(signal_daemon, context.db_path)
    except OSError as error:
        return f"Could not signal the daemon ({error.strerror or error}): reload it yourself."
    if pid is None:
        return "No daemon runs on this database; it applies at the next start."
    return "Told the daemon to reload."
