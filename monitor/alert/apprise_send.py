"""The adapter around apprise for sending: building a notifier, sending one message, reading the result.

A send counts as delivered only on apprise's SUCCESS; a TIMEOUT may have been
delivered, so the outcome says it may be a duplicate. It lives apart from the
dispatcher (which decides what is due and records outcomes) so that every use
of apprise's sending API is in one module, and `monitor alerts test` and the
web page's test button send exactly as the daemon does. apprise is imported
inside the functions: commands that send nothing never load it.

A failed send is explained by what apprise logged for that call: its warning
("Connection error while submitting email") and the cause it logs at debug
level ("SMTP AUTH extension not supported by server"). The call captures its
own records (apprise's `log_level`), so concurrent sends never mix them up;
for the debug records to exist at all the "apprise" logger is set to DEBUG,
and only its WARNING and above still reach the process's log handlers.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from monitor.alert.formats import escape_markdown
from monitor.alert.outbox import CONSOLE
from monitor.alert.secrets import MIN_MASKED_SECRET, url_pieces
from monitor.masking import MASK
from monitor.models import Destination, Message


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    possible_duplicate: bool = False  # a TIMEOUT: the service may have delivered it
    error: str | None = None


def load_notifier(destination: Destination):
    """An apprise object holding this destination's one URL, or None when apprise refuses it.

    Building one parses the URL and, the first time, loads apprise's plugins:
    slow enough that callers run it off the event loop and keep the result.
    """
    import apprise

    notifier = apprise.Apprise()
    return notifier if notifier.add(destination.url) else None


_HIT_MARK = re.compile(r"\[\[(.+?)\]\]")


def print_to_console(text: str) -> None:
    """An alert on standard output: its [[hits]] in bold yellow when that is a terminal."""
    if sys.stdout.isatty():
        text = _HIT_MARK.sub("\x1b[1;33m\\1\x1b[0m", text)
    print(text, flush=True)


async def send(destination: Destination, message: Message, *, timeout: float,
               console: Callable[[str], None] = print_to_console, notifier: Any = None) -> SendOutcome:
    """Deliver one message to one destination; never raises, never leaks the URL's secrets."""
    if destination.url == CONSOLE.url:
        console(f"{message.subject}\n{message.text}\n")
        return SendOutcome(True)
    if notifier is None:
        notifier = await asyncio.get_running_loop().run_in_executor(None, load_notifier, destination)
    if notifier is None:
        return SendOutcome(False, error=f"apprise cannot load the URL of {destination.name}")
    import apprise

    service = notifier[0]
    formats = service.notify_format  # apprise 2.x: the service's formats, preferred first
    body_format = formats[0] if isinstance(formats, (tuple, list)) else formats
    body = {apprise.NotifyFormat.HTML: message.html,
            apprise.NotifyFormat.MARKDOWN: message.markdown}.get(body_format, message.text)
    title = message.subject
    if getattr(service, "title_maxlen", 1) <= 0:
        # The service puts the title inside the body, so it is read in the body's format.
        title = {apprise.NotifyFormat.HTML: html.escape(title),
                 apprise.NotifyFormat.MARKDOWN: escape_markdown(title)}.get(body_format, title)
    _capture_apprise_causes()
    try:
        result = await notifier.async_notify(body=body, title=title, body_format=body_format,
                                             timeout=timeout, log_level=logging.DEBUG)
    except Exception as exc:  # a plugin bug must not kill the dispatcher
        return SendOutcome(False, error=redact(f"{type(exc).__name__}: {exc}", destination))
    status = result.status
    if status == apprise.AppriseResultStatus.SUCCESS:
        return SendOutcome(True)
    timed_out = status == apprise.AppriseResultStatus.TIMEOUT or result.timeout_count > 0
    return SendOutcome(False, possible_duplicate=timed_out,
                       error=redact(_error_text(result, status), destination))


_CAUSE = re.compile(r"^[\w ]*(?:Exception|Error)(?: Details)?:\s*(.+)", re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CAUSE_LIMIT = 300  # characters of a cause kept (an HTTP library's message can be long)


def _error_text(result: Any, status: Any) -> str:
    """What went wrong in words a user can act on: apprise's last warning or error for
    the call, then the cause it logged (an exception's message), else the status name."""
    entries = list(result.logs())
    warnings = [e.message for e in entries if e.level in ("WARNING", "ERROR", "CRITICAL")]
    causes = [found[1].strip() for e in entries if e.level == "DEBUG"
              for found in [_CAUSE.match(e.message)] if found]
    parts = [status.name]
    if warnings:
        parts.append(warnings[-1])
    if causes:
        cause = causes[-1]
        errno = _ERRNO.search(cause)  # "Max retries exceeded ... [Errno 111] Connection refused"
        cause = errno[1].strip() if errno else cause
        parts.append(cause if len(cause) <= _CAUSE_LIMIT else cause[:_CAUSE_LIMIT - 1] + "…")
    return ": ".join(part.rstrip(".") for part in parts)


class _WarningsOnward(logging.Handler):
    """Passes apprise's WARNING and above on to the root logger, as if it still propagated."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


_CAPTURE_READY = False


def _capture_apprise_causes() -> None:
    """Let apprise create its debug records (its per-call capture keeps them for the
    error text) without them reaching this process's log handlers."""
    global _CAPTURE_READY
    if _CAPTURE_READY:
        return
    _CAPTURE_READY = True
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() <= logging.DEBUG:
        return  # someone asked for apprise's debug output: leave it alone
    onward = _WarningsOnward(level=apprise_log.getEffectiveLevel())
    apprise_log.addHandler(onward)
    apprise_log.propagate = False
    apprise_log.setLevel(logging.DEBUG)


def redact(text: str, destination: Destination) -> str:
    """Remove every secret-looking part of the destination's URL from a message.

    A part counts as secret when it is in the real URL but not in the
    privacy-masked one: passwords, tokens in paths and query values, as
    written and decoded, and each word of a value such as "Bearer TOKEN"
    (a message may quote the token alone).
    """
    candidates: set[str] = set()
    for piece in url_pieces(destination.url):
        for form in (piece, unquote(piece), unquote_plus(piece)):
            candidates.add(form)
            candidates.update(form.split())
    for secret in sorted(candidates, key=len, reverse=True):
        if len(secret) >= MIN_MASKED_SECRET and secret not in destination.safe_url:
            text = text.replace(secret, MASK)
    return text
