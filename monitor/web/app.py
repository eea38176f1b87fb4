"""The web interface as an ASGI app: `create_app(context)`.

Pages are server-rendered from Jinja2 templates with autoescaping (every piece
of feed text is escaped), and work without JavaScript; `static/app.js` only
adds conveniences (local times, confirm prompts). Every response carries a
strict Content-Security-Policy (no inline script), `Referrer-Policy:
no-referrer` and `frame-ancestors 'none'`. Every state change is a POST with a
CSRF token (see `web.forms.action`). Errors are a page, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.web import forms
from monitor.web.auth import SESSION_COOKIE, SESSION_SECONDS, Guard, Session
from monitor.web.context import WebContext

log = logging.getLogger("monitor.web")

HERE = Path(__file__).parent
MAX_BODY = 2 * 1024 * 1024  # bytes of a request body (an OPML file fits easily)
BODY_TIMEOUT = 15.0  # seconds a client may take to send the next part of a body
PUBLIC = ("/healthz", "/metrics", "/matches.atom", "/login", "/static/")
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; "
                                 b"img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                 b"form-action 'self'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def create_app(context: WebContext) -> ASGIApp:
    """The whole web interface for CONTEXT, wrapped in its security layers."""
    from monitor.web.pages import PAGES

    routes: list[Any] = [
        Route("/healthz", _healthz),
        Route("/metrics", _metrics),
        Route("/matches.atom", _atom),
        Route("/login", forms.login_page, methods=["GET"]),
        forms.post("/login", forms.login, needs_csrf=True),
        forms.post("/logout", forms.logout),
        Route("/", lambda request: RedirectResponse("/today", status_code=303)),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for page in PAGES:
        routes.extend(page.routes())
    app = Starlette(routes=routes, exception_handlers={HTTPException: forms.error_page,
                                                       Exception: forms.crash_page})
    app.state.context = context
    app.state.login_failures = []  # when wrong passwords came (forms.login)
    return Guarded(Sessions(app, context.guard))


async def _healthz(request: Request) -> Response:
    if request.app.state.context.healthy():
        return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})
    return PlainTextResponse("unhealthy\n", status_code=503, headers={"cache-control": "no-store"})


async def _metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    context = request.app.state.context
    if context.refresh_metrics is not None:
        await context.refresh_metrics()
    body = context.metrics.exposition()
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"})


async def _atom(request: Request) -> Response:
    from monitor.web.atom import ATOM_TYPE, matches_atom

    body = await matches_atom(request.app.state.context.store, title="monitor: matches")
    return Response(body, headers={"content-type": ATOM_TYPE, "cache-control": "no-store"})


class Sessions:
    """Gives every request a signed session (for its CSRF token) and, when a password is
    set, sends anybody not logged in to the login page."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = Request(scope).cookies.get(SESSION_COOKIE)
        session = self.guard.read_cookie(cookie)
        fresh = session is None
        if session is None:
            session = self.guard.new_session(logged_in=False)
        scope.setdefault("state", {})["session"] = session
        path = scope["path"]
        if not self.guard.needs_login and path not in ("/healthz", "/metrics") and not _loopback_host(scope):
            response = PlainTextResponse(
                "This server answers only to localhost names while it has no password "
                "(set one with `monitor web passwd` to serve it under another name).\n", status_code=421)
            await response(scope, receive, send)
            return
        if (self.guard.needs_login and not session.logged_in
                and not any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)):
            if scope["method"] in ("GET", "HEAD"):
                target = "/login?next=" + quote(path, safe="/")
                response: Response = RedirectResponse(target, status_code=303)
            else:
                response = PlainTextResponse("log in first\n", status_code=403)
            set_session_cookie(response, self.guard, session, scope)
            await response(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and fresh:
                headers = list(message.get("headers", []))
                if not any(k == b"set-cookie" and v.startswith(SESSION_COOKIE.encode() + b"=")
                           for k, v in headers):
                    headers.append((b"set-cookie", cookie_header(self.guard, session, scope)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _loopback_host(scope: Scope) -> bool:
    """The Host header names this machine: without a password, a page reached under any
    other name could be a DNS-rebinding site reading it from the person's browser."""
    from monitor.config.listen import is_loopback

    host = Request(scope).headers.get("host", "")
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name)


def cookie_header(guard: Guard, session: Session, scope: Scope) -> bytes:
    """HttpOnly, SameSite=Strict, and Secure whenever the page came over TLS."""
    value = (f"{SESSION_COOKIE}={guard.cookie_value(session)}; Path=/; Max-Age={SESSION_SECONDS}; "
             "HttpOnly; SameSite=Strict")
    if scope.get("scheme") == "https":
        value += "; Secure"
    return value.encode("latin-1")


def set_session_cookie(response: Response, guard: Guard, session: Session, scope: Scope) -> None:
    response.raw_headers.append((b"set-cookie", cookie_header(guard, session, scope)))


class Guarded:
    """The outermost layer: refuses malformed paths and oversized or stalled bodies, adds
    the security headers, and turns any failure into one log line and an error page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        problem = _bad_request(scope)
        if problem is not None:
            await PlainTextResponse(problem[1] + "\n", status_code=problem[0])(scope, receive, send_secured)
            return
        try:
            await self.app(scope, _bounded(receive), send_secured)
        except Exception as exc:  # Starlette has shown the error page; say it in one line
            log.error("web request failed method=%s path=%s error=%s: %s", scope["method"],
                      scope["path"], type(exc).__name__, " ".join(str(exc).split())[:300])
            if not started:
                await PlainTextResponse("Internal Server Error\n", status_code=500)(
                    scope, receive, send_secured)


def _bad_request(scope: Scope) -> tuple[int, str] | None:
    path = scope.get("path", "")
    raw = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
    try:
        urlsplit(raw.decode("latin-1"))
    except ValueError:
        return 400, "Bad Request: the path is not a valid URL path"
    if path.startswith("//") or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return 400, "Bad Request: the path is not a valid URL path"
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            if not value.isdigit():
                return 400, "Bad Request: bad Content-Length"
            if int(value) > MAX_BODY:
                return 413, f"Content Too Large: at most {MAX_BODY // 1024} KB"
    return None


def _bounded(receive: Receive) -> Receive:
    """RECEIVE that refuses bodies over MAX_BODY and clients that stall mid-body."""
    import asyncio

    received = 0

    async def bounded() -> Message:
        nonlocal received
        try:
            message = await asyncio.wait_for(receive(), BODY_TIMEOUT)
        except TimeoutError:
            raise HTTPException(408, "the request body took too long") from None
        received += len(message.get("body", b""))
        if received > MAX_BODY:
            raise HTTPException(413, f"the request is larger than {MAX_BODY // 1024} KB")
        return message

    return bounded
