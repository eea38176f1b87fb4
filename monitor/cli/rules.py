"""`monitor match` and `monitor rules check|list|test|eval|backtest`: the watch rules at work."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from monitor.cli.context import App
from monitor.cli.output import HIT_CLOSE, HIT_OPEN, echo_jsonl, echo_table, emit, feed_text
from monitor.cli.stories import parse_since_option
from monitor.errors import UsageError
from monitor.models import ParseError

_MARKED = re.compile(r"\[\[(.+?)\]\]", re.S)


def _explained(text: str) -> str:
    """`describe` output with its [[hits]] as hit markers: colour on a terminal, [[...]] piped."""
    return _MARKED.sub(lambda m: HIT_OPEN + m.group(1) + HIT_CLOSE, feed_text(text))


def _watch_and_matcher(app: App):
    from monitor.ingest.prepare import load_watch_for
    from monitor.match import Matcher

    watch = load_watch_for(app.config())
    return watch, Matcher.compile(watch)


# --------------------------------------------------------------------------
# monitor match
# --------------------------------------------------------------------------


def _read_items(stream: IO[bytes], fmt: str, name: str) -> Iterator[tuple[object, dict]]:
    """(id, item) pairs from a feed document or JSON Lines, in input order."""
    data = stream.read()
    head = data.lstrip()[:1]
    if fmt == "auto":
        fmt = "jsonl"
        if head == b"<":
            fmt = "feed"
        elif head == b"{":
            try:
                document = json.loads(data)
                if isinstance(document, dict) and "version" in document:
                    fmt = "feed"
            except ValueError:
                pass  # several JSON objects: JSON Lines
    if fmt == "feed":
        from monitor.ingest.parse import parse_feed

        try:
            parsed = parse_feed(data, {}, feed=name, url="file:///" + name)
        except ParseError as exc:
            raise UsageError(f"{name}: {exc}") from None
        for entry in parsed.entries:
            yield entry.guid, {"title": entry.title, "summary": entry.summary,
                               "content": entry.content, "lang": entry.language}
        return
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{name}:{number}: not a JSON object: {exc}") from None
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            raise UsageError(f"{name}:{number}: each line needs a JSON object with a \"title\" string")
        yield item.get("id", number - 1), item


@click.command("match")
@click.argument("path", default="-", type=click.File("rb"))
@click.option("--format", "fmt", type=click.Choice(["auto", "feed", "jsonl"]), default="auto",
              show_default=True, help="Input: a feed (RSS/Atom/JSON Feed) or JSON Lines items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per input item, in order.")
@click.pass_obj
def match_command(app: App, path, fmt: str, as_json: bool) -> None:
    """Match a feed file or JSON Lines items against the watch rules.

    JSON Lines items look like {"id": ..., "title": ..., "summary": ...,
    "content": ..., "lang": "uk"}; only title is required. Exit 0 whether or
    not anything matched.

    \b
    Examples:
      monitor match saved-feed.xml
      monitor match items.jsonl --json
      cat items.jsonl | monitor match - --format jsonl --json
    """
    from monitor.match import as_dict, describe

    _, matcher = _watch_and_matcher(app)
    name = getattr(path, "name", "-")
    if name in ("-", "<stdin>") and sys.stdin.isatty():  # not frozen: waiting for input
        emit("reading a feed or JSON Lines from standard input: paste it, then press Ctrl-D", err=True)
    read = matched = 0
    for index, (item_id, item) in enumerate(_read_items(path, fmt, name)):
        read += 1
        texts = {"title": item.get("title") or "", "summary": item.get("summary") or "",
                 "content": item.get("content") or ""}
        found = matcher.match(**texts, language=item.get("lang"))
        if as_json:
            echo_jsonl([{"id": item_id if item_id is not None else index, "matched": bool(found),
                         "matches": [as_dict(m) for m in found]}])
        elif found:
            emit(f"{item_id}: {feed_text(texts['title'])}")
            for match in found:
                emit("  " + _explained(describe(match, texts)).replace("\n", "\n  "))
        matched += bool(found)
    if not as_json and not matched:
        emit(f"no matches ({read} item{'s' if read != 1 else ''} read)", err=True)


# --------------------------------------------------------------------------
# monitor rules ...
# --------------------------------------------------------------------------


@click.group("rules")
def rules_group() -> None:
    """Check, list, try, score (eval), backtest, enable and disable the watch rules (watch.toml).

    \b
    Examples:
      monitor rules check
      monitor rules list
      monitor rules test "Chinese drone parts keep flowing to Russia"
      monitor rules eval my-labelled.jsonl
      monitor rules backtest --since 7d
      monitor rules disable china_ukraine_energy
    """


@rules_group.command("check")
@click.pass_obj
def rules_check(app: App) -> None:
    """Validate watch.toml; errors show file, line, column and a caret (exit 2).

    \b
    Example:
      monitor rules check
    """
    from monitor.match.watch import watch_warnings

    watch, matcher = _watch_and_matcher(app)
    warnings = watch_warnings(watch)
    for warning in warnings:
        emit(f"warning: {warning}", err=True)
    enabled = [r for r in watch.rules if r.enabled]
    click.echo(f"{len(watch.entities)} entities, {len(watch.groups)} groups, "
               f"{len(enabled)} of {len(watch.rules)} rules enabled: "
               + (f"ok, with {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "ok"))


@rules_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one rule per line.")
@click.pass_obj
def rules_list(app: App, as_json: bool) -> None:
    """List the rules with severity, minimum score, tags and query.

    \b
    Examples:
      monitor rules list
      monitor rules list --json
    """
    from monitor.ingest.prepare import load_watch_for

    watch = load_watch_for(app.config())
    rows = [{"name": r.name, "enabled": r.enabled, "severity": r.severity, "min_score": r.min_score,
             "tags": list(r.tags), "query": r.query, "description": r.description}
            for r in watch.rules]
    if as_json:
        echo_jsonl(rows)
        return
    echo_table(["RULE", "ON", "SEVERITY", "MIN", "TAGS", "QUERY"],
               [[r["name"], "yes" if r["enabled"] else "no", r["severity"], r["min_score"],
                 ",".join(r["tags"]), " ".join(r["query"].split())] for r in rows])


@rules_group.command("test")
@click.argument("text")
@click.option("--summary", default="", help="Summary text to match along with TEXT as the title.")
@click.option("--language", "--lang", "lang", help="Language of the text (en, uk, ru ...).")
@click.option("--feed", help="Pretend the text came from this feed (for scoped rules).")
@click.option("--json", "as_json", is_flag=True, help="The matches as one JSON line.")
@click.pass_obj
def rules_test(app: App, text: str, summary: str, lang: str | None, feed: str | None,
               as_json: bool) -> None:
    """Match TEXT (as a headline) against the rules and explain each match.

    Exit 0 when a rule matched, 1 when none did.

    \b
    Examples:
      monitor rules test "Chinese drone parts keep flowing to Russia"
      monitor rules test "Китай постачає Росії компоненти для дронів" --language uk
    """
    from monitor.match import as_dict, describe

    _, matcher = _watch_and_matcher(app)
    feed_tags: tuple[str, ...] = ()
    if feed is not None:
        feed_tags = next((f.tags for f in app.config().feeds if f.name == feed), ())
    found = matcher.match(title=text, summary=summary, language=lang, feed=feed, feed_tags=feed_tags)
    if as_json:
        echo_jsonl([{"matched": bool(found), "matches": [as_dict(m) for m in found]}])
    elif not found:
        click.echo("no rule matched")
    for match in found if not as_json else ():
        emit(_explained(describe(match, {"title": text, "summary": summary})))
    sys.exit(0 if found else 1)


@rules_group.command("eval")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines: one score line per language and for all, then one line per error.")
@click.option("--quiet", "-q", is_flag=True, help="Scores only, without the list of misses and false alarms.")
@click.pass_obj
def rules_eval(app: App, path: Path, as_json: bool, quiet: bool) -> None:
    """Score the current watch on your own labelled items: precision, recall and
    F1 per language and overall, then each miss and false alarm, explained.

    PATH is JSON Lines, one item a line: {"id": ..., "title": ..., "summary":
    ..., "lang": "uk", "label": true}; add "borderline": true to keep an item
    out of the scores. An item counts as flagged when any enabled rule matches
    its title and summary, as in the daemon. Exit 0 after scoring; 2 when the
    file cannot be read (the file and line are named).

    \b
    Examples:
      monitor rules eval my-labelled.jsonl
      monitor rules eval my-labelled.jsonl --json | jq 'select(.type=="score")'
    """
    from monitor.match.evaluate import describe_error, evaluate, load_labelled, report_lines

    items = load_labelled(path)
    watch, _ = _watch_and_matcher(app)
    evaluation = evaluate(watch, items, explain=not quiet)
    if as_json:
        echo_jsonl([score.as_dict() for score in evaluation.scores.values()])
        if not quiet:
            echo_jsonl([error.as_dict() for error in evaluation.errors])
        return
    for line in report_lines(evaluation):
        click.echo(line)
    if quiet:
        return
    misses = [e for e in evaluation.errors if e.kind == "miss"]
    alarms = [e for e in evaluation.errors if e.kind == "false_alarm"]
    click.echo(f"{len(misses)} missed, {len(alarms)} false alarms")
    for error in misses + alarms:
        click.echo("")
        click.echo(describe_error(error))


@rules_group.command("backtest")
@click.option("--since", default="30d", show_default=True,
              help="Stories first seen since: a duration or an ISO date.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one line per changed story.")
@click.pass_obj
def rules_backtest(app: App, since: str, as_json: bool) -> None:
    """Run the current rules over stored stories, without alerting, and show
    what would match now that did not then (new) and what matched then but
    would not now (gone).

    \b
    Examples:
      monitor rules backtest
      monitor rules backtest --since 7d --json
    """
    from monitor.read.backtest import compare, rules_matcher
    from monitor.store.database import Store

    since_at = parse_since_option(since)
    _, matcher = _watch_and_matcher(app)
    tags_by_feed = {f.name: f.tags for f in app.config().feeds}
    store = Store.open(app.db_path, readonly=True)
    try:
        result = compare(store, None, rules_matcher(matcher, tags_by_feed), since=since_at)
    finally:
        store.close()
    scanned, matched_now, muted = result["scanned"], result["matched_now"], result["muted"]
    changes = result["changes"] + muted
    if as_json:
        echo_jsonl(changes)
        return
    click.echo(f"{scanned} stories since {since_at:%Y-%m-%d %H:%M}Z; {matched_now} match now; "
               f"{sum(1 for c in changes if c['change'] == 'new')} new, "
               f"{sum(1 for c in changes if c['change'] == 'gone')} gone, "
               f"{len(muted)} muted as false positives")
    if changes:
        echo_table(["CHANGE", "RULE", "ID", "FEED", "TITLE", "NOTE"],
                   [[c["change"], c["rule"], c["id"], c["feed"], c["title"],
                     _muted_note(c) if c["change"] == "muted" else ""] for c in changes])


def _muted_note(change: dict) -> str:
    still = "still matches" if change["still_matches"] else "no longer matches"
    return f"{still}; {change['reason']}" if change["reason"] else still


COMMANDS = [match_command, rules_group]
