"""`feeds add` / `feeds remove`: comment-preserving, validated, atomic edits of feeds.toml."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitor.config.load import load_config
from monitor.config.paths import init_config_dir
from monitor.edit.feeds import add_feed, remove_feed
from monitor.errors import ConfigError, UsageError

REPO = Path(__file__).resolve().parent.parent
SHIPPED_FEEDS = (REPO / "config" / "feeds.toml").read_text()

HAND_WRITTEN = """\
# My feeds   [not a table]
# second comment line

# Alpha: the first one
[[feed]]
name = "Alpha"   # trailing comment
url = "https://alpha.example/rss"
tags = [
  "one",  # why one
  "two",
]

# Beta: a description that says [[feed]]
# over two lines
[[feed]]
name = "Beta"
url = "https://beta.example/rss"
[feed.headers]
Authorization = "Basic c2VjcmV0"

# Gamma
[[feed]]
name = "Gamma"
url = "https://gamma.example/rss"
interval = "1h"
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "conf"
    init_config_dir(path, no_feeds=True)
    (path / "feeds.toml").write_text(HAND_WRITTEN)
    return path


def feeds_text(config_dir: Path) -> str:
    return (config_dir / "feeds.toml").read_text()


def names(config_dir: Path) -> list[str]:
    return [feed.name for feed in load_config(config_dir).feeds]


def test_add_appends_and_keeps_every_byte_before_it(config_dir: Path) -> None:
    feed = add_feed(config_dir, url="https://delta.example/feed.xml", name="Delta", interval="90",
                    language="uk", tags=["a", "b"])
    assert (feed.name, feed.url, feed.interval, feed.language, feed.tags) == (
        "Delta", "https://delta.example/feed.xml", 90, "uk", ("a", "b"))
    assert feeds_text(config_dir) == HAND_WRITTEN + (
        '\n[[feed]]\nname = "Delta"\nurl = "https://delta.example/feed.xml"\ninterval = "1m30s"\n'
        'language = "uk"\ntags = ["a", "b"]\n')
    assert names(config_dir) == ["Alpha", "Beta", "Gamma", "Delta"]


def test_add_names_a_feed_after_its_host_and_path_uniquely(config_dir: Path) -> None:
    first = add_feed(config_dir, url="https://www.News.example/rss/")
    second = add_feed(config_dir, url="https://news.example/rss")  # same slug, other URL
    assert (first.name, second.name) == ("news-example-rss", "news-example-rss-2")
    assert first.interval == 600


def test_add_escapes_names_as_toml(config_dir: Path) -> None:
    add_feed(config_dir, url="https://q.example/", name='Quote " and \\ back')
    assert names(config_dir)[-1] == 'Quote " and \\ back'


@pytest.mark.parametrize(("options", "expected"), [
    ({"url": "https://ALPHA.example/rss#top"}, "already polls"),
    ({"url": "https://new.example/", "name": "gamma"}, "already exists"),
    ({"url": "ftp://new.example/"}, "unsupported scheme 'ftp'"),
    ({"url": "https:///x"}, "no host"),
    ({"url": "https://new.example/", "name": " padded"}, "leading or trailing"),
    ({"url": "https://new.example/", "interval": "10x"}, "invalid --interval"),
    ({"url": "https://new.example/", "interval": "0"}, "longer than 0"),
    ({"url": "https://new.example/", "language": "english!"}, "language code"),
    ({"url": "https://new.example/", "tags": ["ok", " "]}, "empty"),
])
def test_a_refused_add_leaves_the_file_byte_identical(config_dir: Path, options: dict, expected: str) -> None:
    before = (config_dir / "feeds.toml").read_bytes()
    with pytest.raises(UsageError) as caught:
        add_feed(config_dir, **options)
    assert expected in str(caught.value)
    assert (config_dir / "feeds.toml").read_bytes() == before
    assert not [name for name in os.listdir(config_dir) if name.startswith(".")]  # no temp file left


def test_add_refuses_while_the_config_is_invalid(config_dir: Path) -> None:
    broken = HAND_WRITTEN.replace('interval = "1h"', 'intervall = "1h"')
    (config_dir / "feeds.toml").write_text(broken)
    with pytest.raises(ConfigError) as caught:
        add_feed(config_dir, url="https://new.example/")
    assert (caught.value.line, caught.value.key) == (25, "feed[2].intervall")
    assert feeds_text(config_dir) == broken


def test_add_refuses_an_inline_feed_array(config_dir: Path) -> None:
    inline = '# mine\nfeed = [{ name = "A", url = "https://a.example/" }]\n'
    (config_dir / "feeds.toml").write_text(inline)
    with pytest.raises(UsageError, match="an inline array"):
        add_feed(config_dir, url="https://new.example/")
    assert feeds_text(config_dir) == inline


def test_add_creates_a_missing_feeds_file_from_the_commented_template(config_dir: Path) -> None:
    (config_dir / "feeds.toml").unlink()
    add_feed(config_dir, url="https://new.example/", name="New")
    text = feeds_text(config_dir)
    assert text.startswith("# feeds.toml: the feeds monitor polls.") and "# [[feed]]" in text
    assert names(config_dir) == ["New"]
    assert stat.S_IMODE((config_dir / "feeds.toml").stat().st_mode) == 0o600


def test_edits_keep_the_file_permissions_and_leave_no_temp_files(config_dir: Path) -> None:
    path = config_dir / "feeds.toml"
    path.chmod(0o640)
    inode = path.stat().st_ino
    add_feed(config_dir, url="https://new.example/", name="New")
    assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    remove_feed(config_dir, "Alpha")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(config_dir)) == sorted(p.name for p in (REPO / "config").iterdir() if p.is_file())


def test_remove_cuts_a_middle_feed_with_its_own_comment_only(config_dir: Path) -> None:
    remove_feed(config_dir, "Beta")
    assert feeds_text(config_dir) == HAND_WRITTEN.replace(
        '# Beta: a description that says [[feed]]\n# over two lines\n[[feed]]\nname = "Beta"\n'
        'url = "https://beta.example/rss"\n[feed.headers]\nAuthorization = "Basic c2VjcmV0"\n\n', "")
    assert names(config_dir) == ["Alpha", "Gamma"]


def test_remove_the_first_and_last_feeds(config_dir: Path) -> None:
    remove_feed(config_dir, "Alpha")
    assert feeds_text(config_dir).startswith("# My feeds   [not a table]\n# second comment line\n\n# Beta:")
    remove_feed(config_dir, "Gamma")
    assert feeds_text(config_dir).endswith('Authorization = "Basic c2VjcmV0"\n')
    remove_feed(config_dir, "Beta")
    assert feeds_text(config_dir) == "# My feeds   [not a table]\n# second comment line\n"
    assert names(config_dir) == []


def test_remove_matches_exactly_then_ignoring_case(config_dir: Path) -> None:
    remove_feed(config_dir, "gAmMa")
    assert names(config_dir) == ["Alpha", "Beta"]


def test_remove_an_unknown_feed_lists_the_known_ones(config_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        remove_feed(config_dir, "Delta")
    assert "'Delta'" in str(caught.value) and "'Alpha', 'Beta', 'Gamma'" in str(caught.value)
    assert feeds_text(config_dir) == HAND_WRITTEN


def test_remove_works_on_an_otherwise_broken_feed_list(config_dir: Path) -> None:
    """Removing the broken feed is how a user fixes it, so validity is not required."""
    (config_dir / "feeds.toml").write_text(HAND_WRITTEN.replace("https://gamma.example/rss", "ftp://g/"))
    remove_feed(config_dir, "Gamma")
    assert names(config_dir) == ["Alpha", "Beta"]


def test_remove_from_the_shipped_defaults_keeps_the_other_comments(tmp_path: Path) -> None:
    init_config_dir(tmp_path / "conf")
    remove_feed(tmp_path / "conf", "112.ua (Ukrainian)")
    text = feeds_text(tmp_path / "conf")
    assert text == SHIPPED_FEEDS.replace(
        '[[feed]]\nname = "112.ua (Ukrainian)"\nurl = "https://ua.112.ua/rss/index.rss"\nlanguage = "uk"\n'
        'tags = ["ukraine", "news"]\n\n', "")
    assert "unreachable" in text
    assert len(load_config(tmp_path / "conf").feeds) == 4


def test_remove_never_climbs_into_the_previous_feeds_value(config_dir: Path) -> None:
    """A multi-line string ending in a '#' line right above a header is a value, not that feed's comment."""
    kept = '[[feed]]\nname = "A"\nurl = "https://a.example/"\nnote = """\n# looks like a comment"""\n'
    (config_dir / "feeds.toml").write_text(kept + '[[feed]]\nname = "B"\nurl = "https://b.example/"\n')
    remove_feed(config_dir, "B")
    assert feeds_text(config_dir) == kept


def test_remove_refuses_a_single_feed_table(config_dir: Path) -> None:
    single = '[feed]\nname = "A"\nurl = "https://a.example/"\n'
    (config_dir / "feeds.toml").write_text(single)
    with pytest.raises(UsageError, match=r"a single \[feed\] table"):
        remove_feed(config_dir, "A")
    assert feeds_text(config_dir) == single


def test_remove_reports_a_syntax_error_with_its_line(config_dir: Path) -> None:
    (config_dir / "feeds.toml").write_text('[[feed]]\nname = "A\n')
    with pytest.raises(ConfigError) as caught:
        remove_feed(config_dir, "A")
    assert caught.value.line == 2
