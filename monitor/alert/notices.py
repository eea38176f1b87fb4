"""The built-in messages that are no story alert: feed health (failing, recovered, silent, gone) and tests.

Their text is written here, not in user templates, so they read the same
everywhere; they go through the same cleaning and escaping as story alerts
(monitor.alert.formats), because a feed's name and error text come from
outside too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.alert.formats import HTML, HTML_FONT, MARKDOWN, TEXT, Format, Link, clean, truncate, when
from monitor.models import Message
from monitor.urls import strip_userinfo

_HEALTH_DETAIL_LIMIT = 200  # characters of a feed error kept in a subject


@dataclass(frozen=True)
class _Line:
    """One line of a built-in message: text, an optional link after it, maybe bold."""

    text: str
    url: str | None = None
    strong: bool = False


def _lines_message(subject: str, lines: Sequence[_Line]) -> Message:
    return Message(subject=clean(subject),
                   text="\n".join(_line(line, TEXT) for line in lines),
                   html="\n".join([f'<div style="{HTML_FONT}">',
                                   *(f'<p style="margin:0 0 6px 0">{_html_line(line)}</p>' for line in lines),
                                   "</div>"]),
                   markdown="\n".join(_markdown_line(line) for line in lines))


def _line(line: _Line, form: Format) -> str:
    text = form.escape(clean(line.text))
    return f"{text} {form.link(Link.of(line.url))}" if line.url is not None else text


def _html_line(line: _Line) -> str:
    text = _line(line, HTML)
    return f"<b>{text}</b>" if line.strong else text


def _markdown_line(line: _Line) -> str:
    text = _line(line, MARKDOWN)
    return f"**{text}**" if line.strong else text


def _health_headline(feed: str, event: str, detail: str) -> str:
    detail = truncate(clean(detail), _HEALTH_DETAIL_LIMIT)
    if event == "failing":
        return f"feed {feed} is failing" + (f": {detail}" if detail else "")
    if event == "recovered":
        return f"feed {feed} recovered"
    if event == "silent":
        return f"feed {feed} is silent" + (f" for {detail}" if detail else "")
    if event == "gone":
        return f"feed {feed} is gone" + (f" ({detail})" if detail else "")
    raise ValueError(f"unknown feed health event {event!r}")


_HEALTH_ADVICE = {
    "failing": "monitor keeps polling it and will say when it recovers.",
    "recovered": "It is being polled normally again.",
    "silent": "No new story for far longer than its usual rhythm: the feed may have moved or stopped.",
    "gone": "The server says the feed is gone for good: fix its address or remove it from feeds.toml.",
}


def render_health(feed: str, url: str, event: str, detail: str, tz: str, at: datetime) -> Message:
    """A feed-health alert. EVENT is failing (DETAIL: the error), recovered (DETAIL:
    what happened, shown in the body), silent (DETAIL: how long, e.g. "3 days")
    or gone (DETAIL: e.g. "410")."""
    headline = _health_headline(clean(feed), event, detail)
    lines = [_Line(headline[0].upper() + headline[1:], strong=True),
             _Line("Feed:", url=strip_userinfo(url)),
             _Line(f"When: {when(at, tz)}")]
    if event == "recovered" and clean(detail):
        lines.append(_Line(detail))
    lines.append(_Line(_HEALTH_ADVICE[event]))
    return _lines_message(f"[monitor] {headline}", lines)


def render_test(destination: str, tz: str, at: datetime) -> Message:
    """The message `monitor alerts test` sends, to prove a destination works."""
    name = clean(destination)
    return _lines_message(f"[monitor] test message to {name}", [
        _Line(f"Test message from monitor to {name}.", strong=True),
        _Line(f"Sent: {when(at, tz)}"),
        _Line("If you can read this, alerts for this destination will arrive here."),
    ])
