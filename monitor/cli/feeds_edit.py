"""`monitor feeds add|remove|import|export`: the commands that change or copy the feed list in feeds.toml.

Apart from monitor.cli.feeds (the group, the health table and the feed
states in the database) because these are the ones that discover and fetch
(httpx) or read and write OPML. They join the `feeds` group from
monitor.cli.feeds; a running daemon on the same database is sent SIGHUP
after an edit so it re-reads the list.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.context import App, tell_daemon
from monitor.cli.feeds import feeds_group
from monitor.cli.output import echo_jsonl, emit
from monitor.config.durations import format_duration
from monitor.edit.feeds import (
    AddFeedsReport,
    NewFeed,
    add_feed,
    add_feeds,
    atomic_write_text,
    check_new_feed_options,
    name_from_title,
    remove_feed,
)
from monitor.edit.opml import export_opml, parse_opml
from monitor.errors import MonitorError, UsageError
from monitor.masking import mask_query_values, mask_url
from monitor.models import FeedConfig, FetchSettings
from monitor.urls import strip_userinfo

if TYPE_CHECKING:  # httpx (under discover and fetch) loads only for the commands that fetch
    from monitor.ingest.discover import Candidate


# --------------------------------------------------------------------------
# add, with discovery
# --------------------------------------------------------------------------


@feeds_group.command("add")
@click.argument("url")
@click.option("--name", help="Feed name (default: derived from the feed's title, else its URL).")
@click.option("--interval", help="Poll interval, e.g. 10m, 1h (default: the config's).")
@click.option("--language", "--lang", "language", help="Language of the feed's stories, e.g. en, uk, ru.")
@click.option("--tag", "tags", multiple=True, help="A tag for the feed (repeatable).")
@click.option("--all", "add_all", is_flag=True, help="When the page lists several feeds, add every one.")
@click.option("--first", is_flag=True, help="When the page lists several feeds, add the first.")
@click.option("--no-discover", is_flag=True,
              help="Add URL exactly as given, without fetching it to check or discover feeds.")
@click.option("--force", is_flag=True,
              help="Add URL as given even when it answers 404/410, its host is unknown or it "
                   "refuses the connection (a feed that is not up yet).")
@click.pass_obj
def feeds_add(app: App, url: str, name: str | None, interval: str | None, language: str | None,
              tags: tuple[str, ...], add_all: bool, first: bool, no_discover: bool,
              force: bool) -> None:
    """Add a feed to feeds.toml (keeping its comments), given the feed's URL or a page of its site.

    A page is searched for its feeds: its <link rel="alternate"> feed links,
    else common places such as /feed and /rss/. When it lists several, you
    are asked which one on a terminal; elsewhere pass --first or --all. A URL
    that answers 404 or 410, whose host is unknown, or that refuses the
    connection is refused unless --force; one that fails otherwise now (a
    timeout, a server error) is added as given, with a warning. Names come
    from the feed's title, else its host.

    Exit codes: 0 added, 1 no feed found at a reachable page, or nothing there
    (404/410, unknown host, connection refused) without --force, 2 a bad
    option, a duplicate, or several feeds found and neither --first nor --all given.

    \b
    Examples:
      monitor feeds add https://kyivindependent.com/rss/ --name kyiv-independent --language en
      monitor feeds add https://www.pravda.com.ua/ --first --tag ukraine
      monitor feeds add https://example.org/ --all --interval 30m
      monitor feeds add https://intranet.example/feed.xml --no-discover
    """
    if add_all and first:
        raise UsageError("--all and --first exclude each other: pick one")
    check_new_feed_options(url, name=name, interval=interval, language=language, tags=tags)
    config = app.config()
    from monitor.ingest.discover import Candidate

    candidates = [Candidate(url=url, title=None, type="")]
    if not no_discover:
        candidates = _discover_or_as_given(url, config.fetch, force=force)
    chosen = _choose(url, candidates, add_all=add_all, first=first)
    if len(chosen) > 1 and name is not None:
        raise UsageError(f"--name names one feed, but {len(chosen)} were chosen: leave --name out "
                         "(names come from the feeds' titles) or add them one at a time")
    taken = {feed.name.casefold() for feed in config.feeds}
    if len(chosen) == 1:
        feed = add_feed(app.config_dir, url=chosen[0].url,
                        name=name or name_from_title(chosen[0].title, chosen[0].url, taken),
                        interval=interval, language=language, tags=tags)
        _echo_added(feed)
    else:
        new = []
        for candidate in chosen:
            derived = name_from_title(candidate.title, candidate.url, taken)
            taken.add(derived.casefold())
            new.append(NewFeed(url=candidate.url, name=derived, tags=tags, language=language,
                               interval=interval))
        report = add_feeds(app.config_dir, new)
        for feed in report.added:
            _echo_added(feed)
        for left_out, reason in [*report.skipped, *report.invalid]:
            emit(f"skipped {left_out.name} ({mask_url(strip_userinfo(left_out.url))}): {reason}")
        if not report.added:
            return
    tell_daemon(app)


def _discover_or_as_given(url: str, settings: FetchSettings, *, force: bool) -> list[Candidate]:
    from monitor.ingest.discover import Candidate, DiscoveryError, probe_urls

    try:
        candidates = asyncio.run(_discover(url, settings))
    except DiscoveryError as error:
        if error.nothing_there and not force:
            raise MonitorError(f"cannot add {mask_url(strip_userinfo(url))}: {error}; check the address, "
                               "or pass --force to add it anyway") from None
        emit(f"monitor: warning: could not fetch {mask_url(strip_userinfo(url))} to check it ({error}); "
             "adding it as given", err=True)
        return [Candidate(url=url, title=None, type="")]
    if not candidates:
        tried = ", ".join(strip_userinfo(probe) for probe in probe_urls(url))
        raise MonitorError(f"no feed found at {strip_userinfo(url)} (tried: the page and its "
                           f"<link rel=\"alternate\"> tags, then {tried})")
    return candidates


async def _discover(url: str, settings: FetchSettings) -> list[Candidate]:
    from monitor.ingest.discover import discover
    from monitor.ingest.fetch import Fetcher

    async with Fetcher(settings) as fetcher:
        return await discover(url, fetcher, datetime.now(UTC))


def _choose(url: str, candidates: list[Candidate], *, add_all: bool, first: bool) -> list[Candidate]:
    """The candidates to add: the only one, all, the first, or the one picked at the prompt."""
    if len(candidates) == 1 or add_all:
        return candidates
    if first:
        return candidates[:1]
    listing = "\n".join(f"  {number}. {_describe(candidate)}"
                        for number, candidate in enumerate(candidates, start=1))
    if not sys.stdin.isatty():
        raise UsageError(f"{strip_userinfo(url)} lists {len(candidates)} feeds:\n{listing}\n"
                         "pass --first to add the first, --all to add every one, or add one by its URL")
    emit(f"{mask_url(strip_userinfo(url))} lists {len(candidates)} feeds:\n{listing}")
    number = click.prompt("Which one? (number)", type=click.IntRange(1, len(candidates)))
    return [candidates[number - 1]]


def _describe(candidate: Candidate) -> str:
    title = f"{candidate.title}  " if candidate.title else ""
    kind = f"  ({candidate.type})" if candidate.type else ""
    return f"{title}{strip_userinfo(candidate.url)}{kind}"


def _echo_added(feed: FeedConfig) -> None:
    emit(f"added feed {feed.name} ({mask_url(strip_userinfo(feed.url))}), every {format_duration(feed.interval)}")


@feeds_group.command("remove")
@click.argument("name")
@click.pass_obj
def feeds_remove(app: App, name: str) -> None:
    """Remove a feed from feeds.toml; its stored stories are kept.

    \b
    Example:
      monitor feeds remove scmp-china
    """
    remove_feed(app.config_dir, name)
    emit(f"removed feed {name}")
    tell_daemon(app)


# --------------------------------------------------------------------------
# OPML
# --------------------------------------------------------------------------


@feeds_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Report what would be added; change nothing.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines, one outline per line with its result: added, skipped or invalid.")
@click.pass_obj
def feeds_import(app: App, file: str, dry_run: bool, as_json: bool) -> None:
    """Add the feeds of an OPML file (from Miniflux, FreshRSS, Feedly, Inoreader...).

    Folders and OPML categories become tags. Feeds already present (same URL,
    or same name ignoring case) are skipped; a bad outline is reported and
    the rest are still imported.

    Exit codes: 0 imported (even with some invalid outlines), 1 the file lists
    no feed at all, 2 the file is not OPML.

    \b
    Examples:
      monitor feeds import ~/Downloads/feedly.opml --dry-run
      monitor feeds import miniflux.opml
      curl -s https://example.org/blogroll.opml | monitor feeds import -
    """
    data = _read_input(file)
    source = "<stdin>" if file == "-" else file
    parsed = parse_opml(data, source)
    if not parsed.feeds and not parsed.invalid:
        raise MonitorError(f"{source}: no feed outlines (with an xmlUrl) in this OPML file")
    report = add_feeds(app.config_dir, [NewFeed(url=feed.url, name=feed.name, tags=feed.tags,
                                                language=feed.language) for feed in parsed.feeds],
                       dry_run=dry_run)
    if as_json:
        echo_jsonl(_import_rows(report, parsed.invalid))
    else:
        _echo_import(report, parsed.invalid, dry_run=dry_run)
    if report.added and not dry_run:
        tell_daemon(app, quiet=as_json)


def _read_input(file: str) -> bytes:
    if file == "-":
        if sys.stdin.isatty():  # say what we wait for, so the command does not look frozen
            emit("reading OPML from standard input: paste it, then press Ctrl-D", err=True)
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {file}: {error.strerror or error}") from None


def _import_rows(report: AddFeedsReport, invalid_outlines: Sequence[str]) -> list[dict]:
    rows = [{"result": "added", "name": feed.name, "url": strip_userinfo(feed.url),
             "tags": list(feed.tags), "reason": None} for feed in report.added]
    for result, entries in (("skipped", report.skipped), ("invalid", report.invalid)):
        rows += [{"result": result, "name": feed.name, "url": strip_userinfo(feed.url),
                  "tags": list(feed.tags), "reason": reason} for feed, reason in entries]
    rows += [{"result": "invalid", "name": None, "url": None, "tags": [], "reason": problem}
             for problem in invalid_outlines]
    return rows


def _echo_import(report: AddFeedsReport, invalid_outlines: Sequence[str], *, dry_run: bool) -> None:
    verb = "would add" if dry_run else "added"
    for feed in report.added:
        tags = f" [{', '.join(feed.tags)}]" if feed.tags else ""
        emit(f"{verb} {feed.name} ({mask_url(strip_userinfo(feed.url))}){tags}")
    for feed, reason in report.skipped:
        emit(f"skipped {feed.name or mask_url(strip_userinfo(feed.url))}: {reason}")
    for feed, reason in report.invalid:
        emit(f"invalid {feed.name or mask_url(strip_userinfo(feed.url))}: {reason}")
    for problem in invalid_outlines:
        emit(f"invalid {problem}")
    invalid = len(report.invalid) + len(invalid_outlines)
    emit(f"{verb} {len(report.added)}, skipped {len(report.skipped)} (already present: same URL "
         f"or name), invalid {invalid}")


@feeds_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
@click.option("--title", default="monitor feeds", show_default=True, help="The OPML head title.")
@click.option("--keep-credentials", is_flag=True,
              help="Keep user:password@ in feed URLs (removed by default: the file may be shared).")
@click.option("--with-secrets", is_flag=True,
              help="Keep credentials and secret query values (?apikey=, token...) in feed URLs "
                   "(masked as *** by default).")
@click.pass_obj
def feeds_export(app: App, output: str | None, title: str, keep_credentials: bool,
                 with_secrets: bool) -> None:
    """Write the configured feeds as OPML 2.0, for another feed reader or a backup.

    Each feed goes in a folder named by its first tag and lists all its tags
    in the OPML `category` attribute, so `feeds import` reads them back.

    \b
    Examples:
      monitor feeds export > feeds.opml
      monitor feeds export -o ~/backup/feeds.opml --title "Newsroom feeds"
    """
    feeds = list(app.config().feeds)
    if not with_secrets:
        masked = [feed.name for feed in feeds if mask_query_values(feed.url) != feed.url]
        feeds = [replace(feed, url=mask_query_values(feed.url)) for feed in feeds]
        if masked:
            click.echo(f"monitor: note: masked secret query values in the URLs of {', '.join(masked)} "
                       "(pass --with-secrets to keep them)", err=True)
    if not (keep_credentials or with_secrets):
        with_credentials = [feed.name for feed in feeds if strip_userinfo(feed.url) != feed.url]
        feeds = [replace(feed, url=strip_userinfo(feed.url)) for feed in feeds]
        if with_credentials:
            emit(f"monitor: note: removed credentials from the URLs of {', '.join(with_credentials)} "
                 "(pass --keep-credentials to keep them)", err=True)
    data = export_opml(feeds, title)
    if output is None:
        click.get_binary_stream("stdout").write(data)
        return
    try:
        atomic_write_text(Path(output), data.decode("utf-8"))
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror or error}") from None
    emit(f"wrote {len(feeds)} feeds to {output}")


COMMANDS: list = []  # these commands join the `feeds` group from monitor.cli.feeds
