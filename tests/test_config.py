"""Config folder: loading, validation errors with file/line/key, TOML positions, paths, init."""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest

from monitor.config.load import Config, ConfigErrors, load_config, validate_feeds_text
from monitor.config.paths import (
    atomic_write_text,
    ensure_config_dir,
    init_config_dir,
    resolve_config_dir,
    resolve_db_path,
    shipped_defaults_dir,
)
from monitor.config.tomlpos import key_line, table_spans, value_column
from monitor.errors import ConfigError, UsageError
from monitor.models import FetchSettings, PollSettings

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config"
DEFAULT_URLS = [
    "https://kyivindependent.com/rss/",
    "https://112.ua/rss/index.rss",
    "https://ua.112.ua/rss/index.rss",
    "https://www.scmp.com/rss/91/feed",
    "https://www.scmp.com/rss/4/feed",
]


def folder(tmp_path: Path, *, monitor: str | None = None, feeds: str | None = None) -> Path:
    """A config folder holding exactly the given files."""
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    if monitor is not None:
        (config_dir / "monitor.toml").write_text(monitor, encoding="utf-8")
    if feeds is not None:
        (config_dir / "feeds.toml").write_text(feeds, encoding="utf-8")
    return config_dir


def load_error(config_dir: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    return caught.value


def all_errors(error: ConfigError) -> list[ConfigError]:
    return list(error.errors) if isinstance(error, ConfigErrors) else [error]


def feed_error(tmp_path: Path, feeds: str) -> ConfigError:
    errors = all_errors(load_error(folder(tmp_path, feeds=feeds)))
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------


def test_the_shipped_config_has_the_five_default_outlets() -> None:
    config = load_config(SHIPPED)
    assert isinstance(config, Config)
    assert [feed.url for feed in config.feeds] == DEFAULT_URLS
    assert [feed.language for feed in config.feeds] == ["en", "ru", "uk", "en", "en"]
    assert all(feed.tags and feed.interval == 600 for feed in config.feeds)
    assert config.fetch == FetchSettings() and config.poll == PollSettings()
    assert (config.timezone, config.log_level) == ("UTC", "info")
    assert "unreachable" in (SHIPPED / "feeds.toml").read_text()


def test_the_shipped_comments_show_the_real_defaults(tmp_path: Path) -> None:
    """Uncommenting every `# key = value` line of monitor.toml must change nothing."""
    text = (SHIPPED / "monitor.toml").read_text()
    uncommented = re.sub(r"(?m)^# ([a-z_]+ = .*)$", r"\1", text)
    assert uncommented.count("\n") == text.count("\n") and uncommented != text
    data = tomllib.loads(uncommented)
    assert set(data["fetch"]) == {"user_agent", "connect_timeout", "read_timeout", "deadline", "max_body",
                                  "parse_timeout", "max_redirects", "global_limit", "per_host_limit"}
    assert set(data["poll"]) == {"interval", "jitter", "backlog_window", "max_backoff", "retention",
                                 "fetch_log_keep"}
    explicit = load_config(folder(tmp_path, monitor=uncommented))
    assert explicit.fetch == FetchSettings() and explicit.poll == PollSettings()
    assert (explicit.timezone, explicit.log_level) == ("UTC", "info")


def test_missing_files_mean_defaults_and_no_feeds(tmp_path: Path) -> None:
    config = load_config(folder(tmp_path))
    assert config.feeds == () and config.poll == PollSettings() and config.fetch == FetchSettings()


def test_settings_are_converted(tmp_path: Path) -> None:
    config = load_config(folder(tmp_path, monitor="""
timezone = "Europe/Kyiv"
log_level = "DEBUG"
[fetch]
max_body = "512KB"
connect_timeout = 5
read_timeout = "1m"
per_host_limit = 4
parse_timeout = 0
[poll]
interval = "1h30m"
jitter = 0
backlog_window = 0
retention = "30d"
""", feeds="""
[[feed]]
name = "Local"
url = "http://127.0.0.1:8080/feed.xml"
tags = ["a"]
headers = { Authorization = "Bearer abc" }

[[feed]]
name = "Own interval"
url = "https://example.com/x"
interval = "2h"
language = "pt_BR"
"""))
    assert config.timezone == "Europe/Kyiv" and config.log_level == "debug"
    assert config.fetch.max_body_bytes == 512 * 1024
    assert (config.fetch.connect_timeout, config.fetch.read_timeout, config.fetch.per_host_limit) == (5, 60, 4)
    assert config.fetch.parse_timeout == 0  # no limit
    assert config.poll.default_interval == 5400 and config.poll.jitter == 0
    assert config.poll.backlog_window == 0 and config.poll.retention == 30 * 86400
    local, own = config.feeds
    assert local.interval == 5400 and local.headers == {"Authorization": "Bearer abc"} and local.tags == ("a",)
    assert own.interval == 7200 and own.language == "pt-br"


def test_a_short_interval_is_allowed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.config.load"):
        feeds = '[[feed]]\nname = "Fast"\nurl = "https://e.com/"\ninterval = "30s"\n'
        config = load_config(folder(tmp_path, feeds=feeds))
    assert config.feeds[0].interval == 30
    assert any("'Fast'" in record.getMessage() and "30s" in record.getMessage() for record in caplog.records)


def test_a_missing_folder_says_how_to_create_one(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope")
    assert error.path == tmp_path / "nope" and "monitor init" in error.message


def test_a_leading_bom_is_tolerated_and_bad_utf8_is_located(tmp_path: Path) -> None:
    config_dir = folder(tmp_path)
    (config_dir / "monitor.toml").write_bytes(b'\xef\xbb\xbflog_level = "error"\n')
    assert load_config(config_dir).log_level == "error"
    (config_dir / "feeds.toml").write_bytes(b'# ok\n# caf\xe9\n')
    error = load_error(config_dir)
    assert (error.path, error.line) == (config_dir / "feeds.toml", 2) and "UTF-8" in error.message


# --------------------------------------------------------------------------
# validation errors: file, line, key
# --------------------------------------------------------------------------


def test_unknown_feed_key_suggests_the_closest(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[[feed]]\nname = "A"\nurl = "https://a.com/"\nintervall = "5m"\n')
    assert error.path == tmp_path / "conf" / "feeds.toml"
    assert (error.line, error.column, error.key) == (4, 1, "feed[0].intervall")
    assert error.message == "unknown key 'intervall' (did you mean 'interval'?)"
    assert str(error).startswith(f"{error.path}:4:1: feed[0].intervall: unknown key")


def test_unknown_setting_suggests_its_section(tmp_path: Path) -> None:
    errors = all_errors(load_error(folder(tmp_path, monitor='interval = "5m"\n[poll]\njiter = 0.2\n')))
    assert [(e.line, e.key) for e in errors] == [(1, "interval"), (3, "poll.jiter")]
    assert "'poll.interval'" in errors[0].message and "did you mean 'jitter'?" in errors[1].message


def test_unknown_top_level_table_in_feeds(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[[feeds]]\nname = "A"\nurl = "https://a.com/"\n')
    assert (error.line, error.key) == (1, "feeds") and "did you mean 'feed'?" in error.message


@pytest.mark.parametrize(("monitor", "line", "key", "expected"), [
    ('[fetch]\nconnect_timeout = true\n', 2, "fetch.connect_timeout", "expected a duration"),
    ('[fetch]\nmax_body = "10XB"\n', 2, "fetch.max_body", "'10XB'"),
    ('[fetch]\nper_host_limit = 1.5\n', 2, "fetch.per_host_limit", "expected a whole number, got 1.5 (a float)"),
    ('[fetch]\nglobal_limit = 0\n', 2, "fetch.global_limit", "from 1 to 10000, got 0"),
    ('[poll]\nfetch_log_keep = ' + "9" * 50 + '\n', 2, "poll.fetch_log_keep", "got a huge number"),
    ('[poll]\nfetch_log_keep = ' + "9" * 5000 + '\n', 2, None, "invalid TOML: a number has too many digits"),
    ('[fetch]\nuser_agent = ""\n', 2, "fetch.user_agent", "non-empty string"),
    ('[poll]\njitter = 0.7\n', 2, "poll.jitter", "from 0.0 to 0.5"),
    ('[poll]\ninterval = 0\n', 2, "poll.interval", "longer than 0"),
    ('[poll]\nretention = "-1d"\n', 2, "poll.retention", "negative"),
    ('[poll]\nfetch_log_keep = "50"\n', 2, "poll.fetch_log_keep", "got '50' (a string)"),
    ('poll = 5\n', 1, "poll", "expected a [poll] table"),
    ('# tz\ntimezone = "Mars/Olympus"\n', 2, "timezone", "unknown time zone 'Mars/Olympus'"),
    ('log_level = "warn"\n', 1, "log_level", "did you mean 'warning'?"),
])
def test_wrong_setting_values(tmp_path: Path, monitor: str, line: int, key: str | None, expected: str) -> None:
    [error] = all_errors(load_error(folder(tmp_path, monitor=monitor)))
    assert error.path == tmp_path / "conf" / "monitor.toml"
    assert (error.line, error.key) == (line, key)
    assert expected in error.message


@pytest.mark.parametrize(("entry", "line", "key", "expected"), [
    ('url = "ftp://example.com/feed"', 7, "feed[1].url", "unsupported scheme 'ftp'"),
    ('url = "https:///feed.xml"', 7, "feed[1].url", "has no host"),
    ('url = "example.com/feed"', 7, "feed[1].url", "has no scheme"),
    ('url = "https://exa mple.com/"', 7, "feed[1].url", "spaces"),
    ('url = "http://[::1/"', 7, "feed[1].url", "not valid"),
    ('url = "https://e.com:99999/"', 7, "feed[1].url", "not valid"),
    ('url = 42', 7, "feed[1].url", "got 42 (an integer)"),
    ('url = "https://b.com/"\ninterval = "10x"', 8, "feed[1].interval", "invalid duration '10x'"),
    ('url = "https://b.com/"\ninterval = 0', 8, "feed[1].interval", "longer than 0"),
    ('url = "https://b.com/"\ninterval = [1]', 8, "feed[1].interval", "got an array"),
    ('url = "https://b.com/"\nlanguage = "english!"', 8, "feed[1].language", "language code"),
    ('url = "https://b.com/"\ntags = "news"', 8, "feed[1].tags", "list of strings"),
    ('url = "https://b.com/"\ntags = [\n  "ok",\n  "",\n]', 10, "feed[1].tags[1]", "non-empty string"),
    ('url = "https://b.com/"\nheaders = ["x"]', 8, "feed[1].headers", "table of header names"),
])
def test_wrong_feed_values(tmp_path: Path, entry: str, line: int, key: str, expected: str) -> None:
    """The first feed is valid; only the second one's problem is reported, at its own line."""
    text = f'[[feed]]\nname = "A"\nurl = "https://a.com/"\n\n[[feed]]\nname = "B"\n{entry}\n'
    error = feed_error(tmp_path, text)
    assert (error.path.name, error.line, error.key) == ("feeds.toml", line, key), str(error)
    assert expected in error.message


def test_duplicate_names_ignore_case_and_point_at_both(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[[feed]]\nname = "Kyiv"\nurl = "https://a.com/"\n\n'
                                 '[[feed]]\nname = "KYIV"\nurl = "https://b.com/"\n')
    assert (error.line, error.column, error.key) == (6, 8, "feed[1].name")
    assert "duplicate feed name 'KYIV'" in error.message and "feed[0] on line 2" in error.message
    assert error.context == '    name = "KYIV"\n           ^'


@pytest.mark.parametrize(("name", "expected"), [
    ('""', "must not be empty"), ('" padded"', "leading or trailing"), ('"tab\\there"', "control"),
    ('"' + "x" * 101 + '"', "at most 100"), ("7", "expected a string"),
])
def test_bad_feed_names(tmp_path: Path, name: str, expected: str) -> None:
    error = feed_error(tmp_path, f'[[feed]]\nname = {name}\nurl = "https://a.com/"\n')
    assert (error.line, error.key) == (2, "feed[0].name") and expected in error.message


def test_missing_required_keys_point_at_the_table(tmp_path: Path) -> None:
    errors = all_errors(load_error(folder(tmp_path, feeds='# one\n\n[[feed]]\nlanguage = "en"\n')))
    assert [(e.line, e.key, e.message) for e in errors] == [
        (3, "feed[0]", "missing required key 'name'"), (3, "feed[0]", "missing required key 'url'")]


def test_a_single_feed_table_is_explained(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[feed]\nname = "A"\nurl = "https://a.com/"\n')
    assert (error.line, error.key) == (1, "feed") and "[[feed]]" in error.message


def test_header_errors_never_show_the_secret(tmp_path: Path) -> None:
    errors = all_errors(load_error(folder(tmp_path, feeds=(
        '[[feed]]\nname = "A"\nurl = "https://a.com/"\n'
        'headers = { Authorization = "Basic c2VjcmV0", Accept-Encoding = "br", X-Token = 12345 }\n'))))
    assert [(e.line, e.key) for e in errors] == [(4, 'feed[0].headers.Accept-Encoding'),
                                                 (4, 'feed[0].headers.X-Token')]
    shown = "\n".join(str(error) for error in errors)
    assert "c2VjcmV0" not in shown and "12345" not in shown
    assert "set by monitor itself" in errors[0].message and "an integer" in errors[1].message


def test_url_passwords_are_redacted_in_errors(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[[feed]]\nname = "A"\nurl = "ftp://user:hunter2@a.com/"\n')
    assert "hunter2" not in str(error) and "user:***@a.com" in str(error)


def test_a_password_holding_a_raw_at_sign_is_redacted_whole(tmp_path: Path) -> None:
    error = feed_error(tmp_path, '[[feed]]\nname = "A"\nurl = "ftp://user:hun@ter2@a.com/x@y"\n')
    assert "ter2" not in str(error) and "user:***@a.com/x@y" in str(error)


def test_toml_syntax_errors_carry_line_and_column(tmp_path: Path) -> None:
    error = load_error(folder(tmp_path, feeds='[[feed]]\nname = "A"\nurl = "https://a.com/\n'))
    assert (error.path, error.line, error.column) == (tmp_path / "conf" / "feeds.toml", 3, 22)
    assert error.message.startswith("invalid TOML: ") and "(at line" not in error.message
    assert error.context is not None and error.context.startswith('    url = "https://a.com/')


def test_a_syntax_error_at_the_end_of_the_document_gets_the_last_line(tmp_path: Path) -> None:
    error = load_error(folder(tmp_path, monitor='[poll]\njitter = 0.1\njitter = 0.2'))
    assert (error.line, error.path.name) == (3, "monitor.toml") and "overwrite" in error.message


def test_every_problem_of_both_files_is_reported_together(tmp_path: Path) -> None:
    error = load_error(folder(tmp_path, monitor='[fetch]\nbogus = 1\n',
                              feeds='[[feed]]\nname = "A"\nurl = "ftp://a/"\n'))
    assert isinstance(error, ConfigErrors)
    assert [(e.path.name, e.line, e.key) for e in error.errors] == [
        ("monitor.toml", 2, "fetch.bogus"), ("feeds.toml", 3, "feed[0].url")]
    assert str(error).startswith("2 problems in the configuration:\n")
    assert (error.line, error.key) == (2, "fetch.bogus")  # the aggregate reads as its first error


def test_validate_feeds_text_uses_the_given_default_interval() -> None:
    feeds = validate_feeds_text('[[feed]]\nname = "A"\nurl = "https://a.com/"\n', Path("feeds.toml"),
                                PollSettings(default_interval=120))
    assert feeds[0].interval == 120


# --------------------------------------------------------------------------
# key_line / value_column on tricky TOML
# --------------------------------------------------------------------------

TRICKY = '''# [[feed]] in a comment is not a table
title = "a [bracket] and a # hash"   # comment [x]
"quoted.key" = 1
site."dotted key".deep = 2
multi = """
[[feed]]
name = "not a table"
"""
literal = \'\'\'
[fetch]\'\'\'
arr = [
  "[", # a comment with [[feed]]
  { inner = "x", other = ']' },
  [1, 2],
]
when = 1979-05-27 07:32:00Z
after_date = true

[[feed]]
name = "first"
url = "https://a/"

[fetch]
timeout = 5
headers = { Authorization = "x", "X-Key" = "y" }

[[feed]]
name = "second"
[feed.headers]
Accept = "text/xml"

[[feed]]   # third
  name = 'third'
  url="https://c/"
  tags = [
    "a",
    "b",
  ]

[[feed.sub]]
x = 1
[[feed.sub]]
x = 2
'''


@pytest.mark.parametrize(("path", "line"), [
    (("title",), 2), (("quoted.key",), 3), (("site", "dotted key", "deep"), 4), (("site",), 4),
    (("multi",), 5), (("literal",), 9), (("arr",), 11), (("arr", 0), 12), (("arr", 1), 13),
    (("arr", 1, "other"), 13), (("arr", 2, 1), 14), (("when",), 16), (("after_date",), 17),
    (("feed", 0), 19), (("feed", 0, "url"), 21), (("fetch",), 23), (("fetch", "timeout"), 24),
    (("fetch", "headers", "X-Key"), 25), (("feed", 1, "name"), 28), (("feed", 1, "headers"), 29),
    (("feed", 1, "headers", "Accept"), 30), (("feed", 2), 32), (("feed", 2, "name"), 33),
    (("feed", 2, "url"), 34), (("feed", 2, "tags", 1), 37), (("feed", 2, "sub", 0, "x"), 41),
    (("feed", 2, "sub", 1, "x"), 43),
])
def test_key_line_finds_keys_in_tricky_toml(path: tuple[str | int, ...], line: int) -> None:
    assert key_line(TRICKY, path) == line


@pytest.mark.parametrize("path", [("feed", 3), ("nope",), ("feed", 0, "language"), ("arr", 9)])
def test_key_line_returns_none_when_absent(path: tuple[str | int, ...]) -> None:
    assert key_line(TRICKY, path) is None


def test_the_tricky_sample_is_valid_toml_with_three_feeds() -> None:
    assert len(tomllib.loads(TRICKY)["feed"]) == 3


def test_table_spans_cover_multi_line_values() -> None:
    spans = {span.path: (span.header_line, span.last_line) for span in table_spans(TRICKY)}
    assert spans[("feed", 2)] == (32, 38)
    assert spans[("feed", 1, "headers")] == (29, 30)


def test_key_line_survives_broken_toml() -> None:
    assert key_line('a = "unclosed\n[t]\nb = [1,\n', ("t", "b")) == 3


def test_value_column() -> None:
    assert value_column(TRICKY, 21) == 7
    assert value_column(TRICKY, 34) == 7
    assert value_column(TRICKY, 3) == 16
    assert value_column(TRICKY, 19) is None  # a header
    assert value_column(TRICKY, 999) is None


# --------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------


def test_config_dir_precedence() -> None:
    env = {"HOME": "/home/u", "MONITOR_CONFIG": "/env/conf", "CONFIGURATION_DIRECTORY": "/etc/monitor:/etc/other",
           "XDG_CONFIG_HOME": "/xdg"}
    assert resolve_config_dir("/flag", env) == (Path("/flag"), "flag")
    assert resolve_config_dir(None, env) == (Path("/env/conf"), "env")
    del env["MONITOR_CONFIG"]
    assert resolve_config_dir(None, env) == (Path("/etc/monitor"), "systemd")
    del env["CONFIGURATION_DIRECTORY"]
    assert resolve_config_dir(None, env) == (Path("/xdg/monitor"), "xdg")
    assert resolve_config_dir(None, {"HOME": "/home/u"}) == (Path("/home/u/.config/monitor"), "xdg")
    assert resolve_config_dir(None, {"HOME": "/home/u", "XDG_CONFIG_HOME": "relative"}) == (
        Path("/home/u/.config/monitor"), "xdg")
    assert resolve_config_dir(None, {"HOME": "/home/u", "MONITOR_CONFIG": ""})[1] == "xdg"


def test_db_path_precedence() -> None:
    env = {"HOME": "/home/u", "MONITOR_DB": "/env/m.db", "STATE_DIRECTORY": "/var/lib/monitor:/x",
           "XDG_DATA_HOME": "/data"}
    assert resolve_db_path("/flag.db", env) == Path("/flag.db")
    assert resolve_db_path(None, env) == Path("/env/m.db")
    del env["MONITOR_DB"]
    assert resolve_db_path(None, env) == Path("/var/lib/monitor/monitor.db")
    del env["STATE_DIRECTORY"]
    assert resolve_db_path(None, env) == Path("/data/monitor/monitor.db")
    assert resolve_db_path(None, {"HOME": "/home/u"}) == Path("/home/u/.local/share/monitor/monitor.db")


def test_shipped_defaults_are_the_config_folder_in_a_checkout() -> None:
    assert shipped_defaults_dir() == SHIPPED


def test_ensure_config_dir_creates_the_xdg_folder_once(tmp_path: Path) -> None:
    target = tmp_path / "xdg" / "monitor"
    assert ensure_config_dir(target, "xdg") is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert (target / "feeds.toml").read_text() == (SHIPPED / "feeds.toml").read_text()
    assert len(load_config(target).feeds) == 5
    (target / "feeds.toml").write_text("# mine\n")
    assert ensure_config_dir(target, "xdg") is False
    assert (target / "feeds.toml").read_text() == "# mine\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["monitor"]  # no staging folder left


@pytest.mark.parametrize("source", ["flag", "env", "systemd"])
def test_ensure_config_dir_never_invents_an_explicit_folder(tmp_path: Path, source: str) -> None:
    assert ensure_config_dir(tmp_path / "typo", source) is False
    assert not (tmp_path / "typo").exists()


# --------------------------------------------------------------------------
# monitor init
# --------------------------------------------------------------------------


def test_init_writes_every_default_file_privately(tmp_path: Path) -> None:
    target = tmp_path / "new" / "conf"
    written = init_config_dir(target)
    shipped = sorted(p.name for p in SHIPPED.iterdir() if p.is_file())
    assert sorted(p.name for p in written) == shipped and {"monitor.toml", "feeds.toml"} <= set(shipped)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes() == (SHIPPED / path.name).read_bytes()
    assert [feed.url for feed in load_config(target).feeds] == DEFAULT_URLS


def test_init_refuses_a_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "conf"
    target.mkdir()
    (target / "feeds.toml").write_text("# mine\n")
    (target / "notes.txt").write_text("keep me\n")
    with pytest.raises(UsageError) as caught:
        init_config_dir(target)
    assert "not empty" in str(caught.value) and "--force" in str(caught.value)
    assert (target / "feeds.toml").read_text() == "# mine\n"
    init_config_dir(target, force=True)
    assert len(load_config(target).feeds) == 5
    assert (target / "notes.txt").read_text() == "keep me\n"


def test_init_into_an_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    assert init_config_dir(tmp_path)


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="it is a file"):
        init_config_dir(tmp_path / "file")


def test_init_no_feeds_keeps_the_comments_and_an_example(tmp_path: Path) -> None:
    init_config_dir(tmp_path / "conf", no_feeds=True)
    text = (tmp_path / "conf" / "feeds.toml").read_text()
    assert load_config(tmp_path / "conf").feeds == ()
    assert tomllib.loads(text) == {}
    assert "# [[feed]]" in text and "monitor feeds add" in text
    shipped_head = (SHIPPED / "feeds.toml").read_text().split("\n\n# The Kyiv")[0]
    assert text.startswith(shipped_head)
    assert "kyivindependent" not in text


def test_atomic_write_keeps_the_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    atomic_write_text(path, "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    atomic_write_text(path, "again\n")
    assert path.read_text() == "again\n" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.toml"]


def test_atomic_write_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text("old\n")
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_failed_atomic_write_keeps_the_original_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text("original\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "half \ud800 written")  # a lone surrogate cannot be encoded
    assert path.read_text() == "original\n" and os.listdir(tmp_path) == ["f.toml"]
