"""Secrets in URLs masked in every display (issue 13): apprise -name/:name, feed ?apikey=, OPML."""

from __future__ import annotations

import json

import pytest

from monitor.ingest.fetch import redact_url
from monitor.masking import mask_text, mask_url
from support.feedserver import send
from test_cli import monitor

HEADER_SECRET = "hdr-Secret-4711"
PARAM_SECRET = "get-Secret-4712"
PAYLOAD_SECRET = "pay-Secret-4713"
FEED_SECRET = "feed-Secret-4714"


@pytest.mark.parametrize("url, shown", [
    ("json://h/?-X-Token=abc&:apikey=def&+Auth=ghi&format=json",
     "json://h/?-X-Token=***&:apikey=***&+Auth=***&format=json"),
    ("https://h/feed?apikey=abc&page=2", "https://h/feed?apikey=***&page=2"),
    ("https://h/feed?Token=a&key=b&password=c&secret=d&sig=e&lang=en",
     "https://h/feed?Token=***&key=***&password=***&secret=***&sig=***&lang=en"),
    ("http://alice:pw@h/feed", "http://alice:***@h/feed"),
    ("https://h/feed?q=china#top", "https://h/feed?q=china#top"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_errors_quote_feed_urls_masked() -> None:
    assert FEED_SECRET not in redact_url(f"http://u:p@h/feed?api_key={FEED_SECRET}")
    assert mask_text(f"HTTP 500 (https://h/f?token={FEED_SECRET}) again") == \
        "HTTP 500 (https://h/f?token=***) again"


def test_destinations_and_the_add_echo_mask_apprise_parameters(env) -> None:
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    url = (f"json://127.0.0.1:9/hook?-X-Token={PARAM_SECRET}&:apikey={PAYLOAD_SECRET}"
           f"&+X-Auth={HEADER_SECRET}")
    added = monitor("alerts", "add", "-", "--name", "hook", input=url + "\n", env=env, check=True)
    listed = monitor("alerts", "destinations", env=env, check=True)
    as_json = monitor("alerts", "destinations", "--json", env=env, check=True)
    for output in (added, listed, as_json):
        text = output.stdout + output.stderr
        for secret in (HEADER_SECRET, PARAM_SECRET, PAYLOAD_SECRET):
            assert secret not in text
    assert "hook" in added.stdout and "-X-Token=***" in json.loads(as_json.stdout.splitlines()[0])["safe_url"]


def test_feed_query_secrets_are_masked_in_feeds_list_errors_and_opml(env, feed_server, tmp_path) -> None:
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    feed_server.routes["/feed"] = lambda handler: send(handler, 500, b"down")
    url = feed_server.url(f"/feed?apikey={FEED_SECRET}&edition=en")
    monitor("feeds", "add", url, "--name", "keyed", "--no-discover", env=env, check=True)
    run = monitor("run", "--once", env=env)
    listed = monitor("feeds", "list", env=env, check=True)
    as_json = monitor("feeds", "list", "--json", env=env, check=True)
    exported = monitor("feeds", "export", env=env, check=True)
    for output in (run, listed, as_json, exported):
        assert FEED_SECRET not in output.stdout + output.stderr
    row = json.loads(as_json.stdout.splitlines()[0])
    assert row["url"].endswith("/feed?apikey=***&edition=en") and "HTTP 500" in row["last_error"]
    assert "apikey=***" in exported.stdout and "--with-secrets" in exported.stderr
    kept = monitor("feeds", "export", "--with-secrets", env=env, check=True)
    assert FEED_SECRET in kept.stdout
