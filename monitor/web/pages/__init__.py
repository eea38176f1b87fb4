"""One module per page; each exposes `routes()`, the GETs and checked POSTs it serves."""

from __future__ import annotations

from types import ModuleType


def _pages() -> list[ModuleType]:
    from monitor.web.pages import alerts, feeds, reading, today, watch

    return [today, feeds, watch, alerts, reading]


class _Pages:
    def __iter__(self):
        return iter(_pages())


PAGES = _Pages()
