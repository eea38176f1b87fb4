"""The report: what was caught over a period, per day, rule and outlet, and the top stories.

`build_report` reads the stored matches once into a plain `Report`; the
renderers turn it into text, JSON Lines rows or a self-contained HTML page.
Days are calendar days in the configured time zone, counted by when a match
was recorded. Matches a person muted as false positives are not counted
(only their number is shown). Copies of one story from several outlets (same
link, same story on a sister edition, or the same headline: the outbox's
duplicate keys) are one top story, ranked by how many outlets carried it,
then by its best score.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.errors import MonitorError
from monitor.store.database import Store
from monitor.store.reads import matches_between
from monitor.store.values import from_text, to_text
from monitor.stories import story_keys

TOP_STORIES = 10


@dataclass(frozen=True)
class TopStory:
    title: str
    url: str | None
    score: float  # the best score of any of its matches
    outlets: tuple[str, ...]
    rules: tuple[str, ...]
    first_seen: str
    ids: tuple[int, ...]  # story IDs, one per copy


@dataclass(frozen=True)
class Outlet:
    name: str
    matches: int
    stories: int
    rules: Mapping[str, int]


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    tz: str
    days: tuple[str, ...]  # every local date of the period, oldest first
    rules: tuple[str, ...]  # rules with matches, most matches first
    by_day: Mapping[str, Mapping[str, int]]  # day -> rule -> matches
    day_stories: Mapping[str, int]  # day -> stories matched that day (one story, however many rules)
    rule_matches: Mapping[str, int]  # rule -> matches
    rule_stories: Mapping[str, int]  # rule -> stories it matched
    outlets: tuple[Outlet, ...]  # most matches first
    top: tuple[TopStory, ...]
    matches: int
    stories: int
    muted: int  # matches muted as false positives, not counted above


def build_report(store: Store, *, since: datetime, now: datetime, tz: str,
                 top: int = TOP_STORIES) -> Report:
    """Count the matches recorded between SINCE and NOW, by local day in TZ."""
    zone = ZoneInfo(tz)
    rows = matches_between(store, since, now)
    counted = [row for row in rows if row["muted_at"] is None]
    by_day: dict[str, Counter[str]] = {day: Counter() for day in _days(since, now, zone)}
    day_entries: dict[str, set[int]] = defaultdict(set)
    rule_matches: Counter[str] = Counter()
    rule_entries: dict[str, set[int]] = defaultdict(set)
    outlet_rules: dict[str, Counter[str]] = defaultdict(Counter)
    outlet_entries: dict[str, set[int]] = defaultdict(set)
    for row in counted:
        day = from_text(row["created"]).astimezone(zone).date().isoformat()
        by_day.setdefault(day, Counter())[row["rule"]] += 1
        day_entries[day].add(row["entry_id"])
        rule_matches[row["rule"]] += 1
        rule_entries[row["rule"]].add(row["entry_id"])
        outlet_rules[row["feed"]][row["rule"]] += 1
        outlet_entries[row["feed"]].add(row["entry_id"])
    outlets = sorted((Outlet(name, sum(rules.values()), len(outlet_entries[name]), dict(rules.most_common()))
                      for name, rules in outlet_rules.items()), key=lambda o: (-o.matches, o.name))
    return Report(
        since=since, until=now, tz=tz, days=tuple(sorted(by_day)),
        rules=tuple(rule for rule, _ in sorted(rule_matches.items(), key=lambda item: (-item[1], item[0]))),
        by_day={day: dict(counts) for day, counts in by_day.items()},
        day_stories={day: len(day_entries.get(day, ())) for day in by_day},
        rule_matches=dict(rule_matches),
        rule_stories={rule: len(ids) for rule, ids in rule_entries.items()},
        outlets=tuple(outlets), top=tuple(_top_stories(counted)[:top]), matches=len(counted),
        stories=len({row["entry_id"] for row in counted}), muted=len(rows) - len(counted))


def _days(since: datetime, until: datetime, zone: ZoneInfo) -> list[str]:
    day, last = since.astimezone(zone).date(), until.astimezone(zone).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def _top_stories(rows: Sequence[dict[str, Any]]) -> list[TopStory]:
    """Matched stories, copies from several outlets joined (union-find over story keys)."""
    entries: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = entries.setdefault(row["entry_id"], {**row, "rules": set(), "score": row["score"]})
        entry["rules"].add(row["rule"])
        entry["score"] = max(entry["score"], row["score"])
    parent = {entry_id: entry_id for entry_id in entries}

    def root(entry_id: int) -> int:
        while parent[entry_id] != entry_id:
            parent[entry_id] = parent[parent[entry_id]]
            entry_id = parent[entry_id]
        return entry_id

    owner: dict[str, int] = {}
    for entry_id, entry in entries.items():
        for key in story_keys(entry["url"], entry["title"]):
            if key in owner:
                parent[root(entry_id)] = root(owner[key])
            else:
                owner[key] = entry_id
    clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry_id in entries:
        clusters[root(entry_id)].append(entries[entry_id])
    stories = [_story(copies) for copies in clusters.values()]
    stories.sort(key=lambda s: (-len(s.outlets), -s.score, s.first_seen))
    return stories


def _story(copies: list[dict[str, Any]]) -> TopStory:
    best = max(copies, key=lambda c: (c["score"], -c["entry_id"]))
    return TopStory(
        title=best["title"], url=best["url"], score=best["score"],
        outlets=tuple(sorted({c["feed"] for c in copies})),
        rules=tuple(sorted(set().union(*(c["rules"] for c in copies)))),
        first_seen=min(c["first_seen"] for c in copies),
        ids=tuple(sorted(c["entry_id"] for c in copies)))


# --------------------------------------------------------------------------
# text and JSON Lines
# --------------------------------------------------------------------------


def _period(report: Report) -> str:
    zone = ZoneInfo(report.tz)
    return (f"{report.since.astimezone(zone):%Y-%m-%d %H:%M} to "
            f"{report.until.astimezone(zone):%Y-%m-%d %H:%M} ({report.tz})")


def _summary(report: Report) -> str:
    text = (f"{report.stories} stor{'ies' if report.stories != 1 else 'y'} matched "
            f"({report.matches} rule match{'es' if report.matches != 1 else ''}) from "
            f"{len(report.outlets)} outlet{'s' if len(report.outlets) != 1 else ''}")
    if report.muted:
        text += f"; {report.muted} muted match{'es' if report.muted != 1 else ''} not counted"
    return text


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def _aligned(rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)).rstrip() for row in cells]


def render_text(report: Report) -> str:
    """The report for a terminal or a mail: per day, per rule, per outlet, top stories."""
    lines = [f"Matches from {_period(report)}", _summary(report), "", "Per day"]
    lines += _aligned([["DAY", "STORIES", "MATCHES", "RULES"]] + [
        [day, report.day_stories[day], sum(report.by_day[day].values()), _counts(report.by_day[day])]
        for day in report.days])
    if report.rules:
        lines += ["", "Per rule"]
        lines += _aligned([["RULE", "MATCHES", "STORIES"]] + [
            [rule, report.rule_matches[rule], report.rule_stories[rule]] for rule in report.rules])
        lines += ["", "Per outlet"]
        lines += _aligned([["OUTLET", "MATCHES", "STORIES", "RULES"]] + [
            [o.name, o.matches, o.stories, _counts(o.rules)] for o in report.outlets])
        lines += ["", "Top stories"]
        for rank, story in enumerate(report.top, start=1):
            lines.append(f"{rank:2}. {story.title}")
            lines.append(f"    score {story.score:g} · {len(story.outlets)} outlet"
                         f"{'s' if len(story.outlets) != 1 else ''}: {', '.join(story.outlets)}"
                         f" · {', '.join(story.rules)} · story {', '.join(map(str, story.ids))}")
            if story.url:
                lines.append(f"    {story.url}")
    return "\n".join(lines) + "\n"


def report_rows(report: Report) -> Iterator[dict[str, Any]]:
    """The report as JSON-ready rows, each with a `kind`: summary, day, rule, outlet, story."""
    yield {"kind": "summary", "since": to_text(report.since), "until": to_text(report.until),
           "timezone": report.tz, "matches": report.matches, "stories": report.stories,
           "outlets": len(report.outlets), "muted": report.muted}
    for day in report.days:
        yield {"kind": "day", "day": day, "stories": report.day_stories[day],
               "matches": sum(report.by_day[day].values()),
               "rules": dict(report.by_day[day])}
    for rule in report.rules:
        yield {"kind": "rule", "rule": rule, "matches": report.rule_matches[rule],
               "stories": report.rule_stories[rule]}
    for outlet in report.outlets:
        yield {"kind": "outlet", "outlet": outlet.name, "matches": outlet.matches,
               "stories": outlet.stories, "rules": dict(outlet.rules)}
    for rank, story in enumerate(report.top, start=1):
        yield {"kind": "story", "rank": rank, "title": story.title, "url": story.url,
               "score": story.score, "outlets": list(story.outlets), "rules": list(story.rules),
               "first_seen": story.first_seen, "ids": list(story.ids)}


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_CSS = """
body { margin: 0; background: #f4f5f7; color: #1d2430; font: 15px/1.45 system-ui, -apple-system,
       "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 12px; }
.period { color: #5a6474; margin: 0 0 18px; }
.totals { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 18px; }
.total { background: #fff; border-radius: 8px; padding: 10px 16px; min-width: 110px;
         box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.total b { display: block; font-size: 24px; }
.total span { color: #5a6474; font-size: 13px; }
section { background: #fff; border-radius: 8px; padding: 16px 18px; margin-bottom: 18px;
          box-shadow: 0 1px 2px rgba(0,0,0,.08); overflow-x: auto; }
.chart svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid #e6e8ec; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
ol.stories { margin: 0; padding-left: 24px; }
ol.stories li { margin-bottom: 10px; }
ol.stories a { color: #1750a8; font-weight: 600; text-decoration: none; }
ol.stories a:hover { text-decoration: underline; }
.meta { color: #5a6474; font-size: 13px; }
.empty { color: #5a6474; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(report: Report) -> str:
    """A self-contained page (no script, no outside request: the CSP forbids them) with
    a chart of matches per day and rule (pygal, rendered to inline SVG) and the tables."""
    e = html.escape
    totals = [(report.matches, "matches"), (report.stories, "stories"), (len(report.outlets), "outlets"),
              (report.muted, "muted (not counted)")]
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>monitor report: {e(_period(report))}</title>", f"<style>{_CSS}</style></head>",
        "<body><main>", "<h1>What was caught</h1>", f'<p class="period">{e(_period(report))}</p>',
        '<div class="totals">' + "".join(
            f'<div class="total"><b>{count}</b><span>{e(label)}</span></div>' for count, label in totals)
        + "</div>",
        '<section><h2>Matches per day and rule</h2>', f'<div id="chart" class="chart">{chart_svg(report)}</div>',
        "</section>", "<section><h2>Top stories</h2>", _top_html(report), "</section>",
        "<section><h2>Per outlet</h2>", _table(
            ["Outlet", "Matches", "Stories", "Rules"],
            [[o.name, o.matches, o.stories, _counts(o.rules)] for o in report.outlets]), "</section>",
        "<section><h2>Per rule</h2>", _table(
            ["Rule", "Matches", "Stories"],
            [[rule, report.rule_matches[rule], report.rule_stories[rule]] for rule in report.rules]),
        "</section>", "<section><h2>Per day</h2>", _table(
            ["Day", "Matches", "Rules"],
            [[day, sum(report.by_day[day].values()), _counts(report.by_day[day])]
             for day in report.days]), "</section>",  # days oldest first, as in the text report
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def chart_svg(report: Report) -> str:
    """A stacked bar per day, one colour per rule, as inline SVG with no script (pygal
    is imported only here: only `report --html` and the web's Report page need it)."""
    try:
        import pygal
        from pygal.style import Style
    except ImportError:
        raise MonitorError("the HTML report draws its chart with pygal, which is not installed: "
                           "pip install 'monitor[report]' (or pip install pygal)") from None

    style = Style(background="transparent", plot_background="#ffffff", foreground="#1d2430",
                  foreground_strong="#1d2430", foreground_subtle="#c9ced6",
                  font_family='system-ui, "DejaVu Sans", sans-serif', label_font_size=12,
                  major_label_font_size=12, legend_font_size=13, value_font_size=12)
    every = max(1, len(report.days) // 14)
    highest = max((sum(report.by_day[day].values()) for day in report.days), default=0)
    step = max(1, math.ceil(highest / 8))  # whole numbers of matches on the axis
    chart = pygal.StackedBar(
        js=[], disable_xml_declaration=True, style=style, width=1000, height=420,
        legend_at_bottom=True, legend_at_bottom_columns=3, truncate_legend=-1,
        x_label_rotation=-35 if len(report.days) > 10 else 0, show_minor_x_labels=every == 1,
        x_labels_major_every=every, y_title="matches", print_zeroes=False,
        no_data_text="No matches in this period")
    chart.add_xml_filter(_without_scripts)
    chart.x_labels = list(report.days)
    if highest:  # pygal cannot place y labels on a chart without data
        chart.y_labels = list(range(0, highest + step, step))
    for rule in report.rules:
        chart.add(rule, [report.by_day[day].get(rule) or None for day in report.days])
    return chart.render(is_unicode=True)


def _without_scripts(root: Any) -> Any:
    """pygal embeds its config as a <script> for its optional tooltips; the page runs no script."""
    for parent in list(root.iter()):
        for child in list(parent):
            if str(child.tag).rpartition("}")[2] == "script":
                parent.remove(child)
    return root


def _top_html(report: Report) -> str:
    if not report.top:
        return '<p class="empty">No matches in this period.</p>'
    e = html.escape
    items = []
    for story in report.top:
        title = e(story.title or "(untitled)")
        link = (f'<a href="{e(story.url, quote=True)}" rel="noopener noreferrer">{title}</a>'
                if _is_web_link(story.url) else f"<b>{title}</b>")
        outlets = f"{len(story.outlets)} outlet{'s' if len(story.outlets) != 1 else ''}"
        items.append(f'<li>{link}<div class="meta">score {story.score:g} · {outlets}: '
                     f'{e(", ".join(story.outlets))} · {e(", ".join(story.rules))} · '
                     f'first seen {e(story.first_seen)}</div></li>')
    return '<ol class="stories">' + "".join(items) + "</ol>"


def _is_web_link(url: str | None) -> bool:
    """Only http(s) links become hrefs: a feed could carry javascript: or data: links."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="empty">None in this period.</p>'
    e = html.escape

    numeric = [isinstance(value, (int, float)) for value in rows[0]]

    def cell(tag: str, value: Any, is_number: bool) -> str:
        return f'<{tag}{" class=n" if is_number else ""}>{e(str(value))}</{tag}>'

    head = "".join(cell("th", h, n) for h, n in zip(headers, numeric, strict=True))
    body = "".join("<tr>" + "".join(cell("td", v, n) for v, n in zip(row, numeric, strict=True)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
