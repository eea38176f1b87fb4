"""One duration grammar for the config, --interval and --since.

`90s`, `10m`, `1h`, `2d`, `1w` and combinations such as `1h30m`; a bare
number means seconds. Numbers are read as decimals, not floats, so an absurd
value such as `99999999999w` is clamped to MAX_DURATION instead of
overflowing somewhere downstream (timedelta, APScheduler, SQLite).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MAX_DURATION = 10 * 365 * 24 * 3600.0  # ten years: longer than anything sensible
_CEILING = Decimal(MAX_DURATION)

_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_BARE = re.compile(rf"(?:{_NUMBER})")
_PART = re.compile(rf"\s*({_NUMBER})\s*([wdhms])", re.IGNORECASE)
GRAMMAR = ("a number with a unit s, m, h, d or w, such as '90s', '10m', '1h', '2d', '1w' "
           "or '1h30m' (a bare number means seconds)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in TEXT, clamped to MAX_DURATION; ValueError quoting the input if it is not a duration."""
    shown = _shown(text)
    if isinstance(text, str):
        seconds = _parse_text(text, shown)
    elif isinstance(text, int) and not isinstance(text, bool):
        seconds = Decimal(text)
    elif isinstance(text, float) and not math.isnan(text):
        seconds = Decimal(text) if math.isfinite(text) else Decimal(math.copysign(1, text)) * _CEILING
    else:
        raise ValueError(f"invalid duration {shown}: expected {GRAMMAR}")
    if seconds < 0:
        raise ValueError(f"invalid duration {shown}: it must not be negative")
    return float(min(seconds, _CEILING))


def _shown(value: object) -> str:
    """VALUE quoted for an error message, cut short so a pasted novel stays readable."""
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:40] + "...")
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return "<a number too long to show>"
    return text if len(text) <= 43 else text[:40] + "..."


def _parse_text(text: str, shown: str) -> Decimal:
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"invalid duration {shown}: it is empty; expected {GRAMMAR}")
    if stripped.startswith("-"):
        raise ValueError(f"invalid duration {shown}: it must not be negative")
    if _BARE.fullmatch(stripped):
        return min(Decimal(stripped), _CEILING)
    total = Decimal(0)
    pos = 0
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if not match:
            raise ValueError(f"invalid duration {shown}: expected {GRAMMAR}")
        # Clamp each number first so that even a million digits cannot overflow Decimal.
        count = min(Decimal(match.group(1)), _CEILING)
        total = min(total + count * _UNIT_SECONDS[match.group(2).lower()], _CEILING)
        pos = match.end()
    return total


def parse_since(text: str, now: datetime) -> datetime:
    """The aware UTC time TEXT means: a duration before NOW, or an ISO date/datetime (naive = UTC)."""
    now_utc = _as_utc(now)
    try:
        return now_utc - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {_shown(text)}: expected a duration meaning that long ago, such as "
            "'90s', '10m', '1h30m', '2d' or '1w', or an ISO date or time such as "
            "'2026-11-01', '2026-11-01T10:00' or '2026-11-01T10:00+02:00' (UTC when no offset)"
        ) from None
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """The shortest grammar form of SECONDS: 600 -> '10m', 5400 -> '1h30m', 0 -> '0s'."""
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration: it must be a non-negative number")
    whole = int(min(seconds, MAX_DURATION))
    fraction = min(seconds, MAX_DURATION) - whole
    parts: list[str] = []
    for unit, size in _UNIT_SECONDS.items():
        count, whole = divmod(whole, size)
        if unit == "s" and fraction:
            parts.append(f"{round(count + fraction, 3):g}s")
        elif count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
