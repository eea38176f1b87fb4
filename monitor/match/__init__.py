"""Watch rules: flag the stories a person cares about, and say why.

The watch lives in ``watch.toml`` in the config folder: entities (names in any language),
term groups and rules (queries with a severity and tags). The language, word forms, scoring and
scope are documented for users in docs/watch-language.md; this package is the engine:
text.py (words and their normal forms) -> query.py (the query language) -> watch.py (watch.toml)
-> engine.py (one compiled index, scoring) -> explain.py (what a match shows).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name's module, imported on first use: reading watch.toml (watch.py) must not pay
# for the engine, which a re-poll with nothing new never runs.
_HOMES = {
    "Matcher": "engine", "match_entry": "engine", "as_dict": "explain", "describe": "explain",
    **dict.fromkeys(("SEVERITIES", "Entity", "Group", "Rule", "Watch", "load_watch", "parse_watch_text"), "watch"),
}
__all__ = ["SEVERITIES", "Entity", "Group", "Matcher", "Rule", "Watch", "as_dict", "describe", "load_watch",
           "match_entry", "parse_watch_text"]

if TYPE_CHECKING:
    from monitor.match.engine import Matcher, match_entry
    from monitor.match.explain import as_dict, describe
    from monitor.match.watch import SEVERITIES, Entity, Group, Rule, Watch, load_watch, parse_watch_text


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'monitor.match' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"monitor.match.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
