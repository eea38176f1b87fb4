"""Fuzzing the config loaders: any file gives a config or a ConfigError that points inside it.

Three shapes of input: TOML-ish text built line by line from the files' own
vocabulary (headers, keys, values, broken syntax), structurally valid TOML
with random keys and values, and raw bytes. Every URL carries a generated
`user:PASSWORD@`, and header values and secrets.toml values are generated
tokens; none of them may ever reach an error message or a log record.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import tomlkit
from hypothesis import event, example, given
from hypothesis import strategies as st

from monitor.alert.destinations import ALERTS_FILE, AlertsConfig, load_alerts
from monitor.alert.secrets import SECRETS_FILE
from monitor.config.load import FEEDS_FILE, MONITOR_FILE, Config, ConfigErrors, load_config
from monitor.errors import ConfigError
from monitor.match import Watch, load_watch

# A generated secret starts and ends with these, so even a partly shown one is caught.
SECRET_HEAD, SECRET_TAIL = "Pzw", "Qxq"
_SECRET_CHARS = "abcdefXYZ0123456789-._~!$&'()*+,;=%"


def _clean(text: str) -> bool:
    return SECRET_HEAD not in text and SECRET_TAIL not in text


secrets = st.text(st.sampled_from(_SECRET_CHARS), min_size=1, max_size=10).map(
    lambda middle: SECRET_HEAD + middle + SECRET_TAIL)
_words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12).filter(_clean)
_junk = st.text(st.characters(codec="utf-8"), max_size=20).filter(_clean)
_hosts = st.sampled_from(["example.org", "127.0.0.1", "[::1]", "localhost:8080", "ex ample.org", "", ":99999",
                          "xn--80ak6aa92e.com", "EXAMPLE.org:443"])


@st.composite
def secret_urls(draw: st.DrawFn, schemes: list[str]) -> str:
    """A URL with user:SECRET@ in front of the host, sometimes mangled around it."""
    scheme = draw(st.sampled_from(schemes))
    user = draw(st.sampled_from(["user", "", "a.b%40c", "u:v", "admin"]))
    password = draw(secrets)
    host = draw(_hosts)
    path = draw(st.sampled_from(["/feed", "", "/rss?utm_source=x&a=1", "/t?to=desk@example.org", "/#frag",
                                 " /x", "/\t"]))
    return f"{scheme}{user}:{password}@{host}{path}"


# -- TOML literals ---------------------------------------------------------------------


def toml_literal(value: str, form: str) -> str:
    """VALUE as a TOML string; FORM basic, literal or broken (unclosed or badly escaped)."""
    if form == "literal" and "'" not in value and "\n" not in value and value.isprintable():
        return f"'{value}'"
    escaped = "".join(f"\\u{ord(c):04X}" if (ord(c) < 0x20 or ord(c) == 0x7F) else
                      "\\\\" if c == "\\" else '\\"' if c == '"' else c for c in value)
    if form == "broken":
        return '"' + escaped.replace("\\\\", "\\q", 1)
    return f'"{escaped}"'


_string_forms = st.sampled_from(["basic", "basic", "literal", "broken"])
_durations = st.sampled_from(["10m", "0s", "1h30m", "-5m", "1e999s", "10 parsecs", "5", "90", "1w2d", "", "m",
                              "99999999999999999999d", "1.5h", "NaN"])
_sizes = st.sampled_from(["10MB", "0B", "1.5GB", "99999999999999999999GB", "12 KiB", "-1MB", "MB", "1e3"])
_zones = st.sampled_from(["UTC", "Europe/Kyiv", "Asia/Hong_Kong", "../../etc/passwd", "Foo/Bar", "\x00", "",
                          "/usr/share/zoneinfo/UTC", "Etc/GMT+5", "utc"])
_levels = st.sampled_from(["info", "DEBUG", " warning ", "verbose", "", "err"])
_numbers = st.sampled_from(["0", "-1", "1_000", "1e309", "inf", "-inf", "nan", "0x1F", "0o17", "0b101", "3.14",
                            "1__0", "01", "+7", "1" + "0" * 5000, "9" * 30, "1979-05-27T07:32:00Z", "1979-05-27",
                            "07:32:00", "true", "false", "True"])


@st.composite
def toml_values(draw: st.DrawFn, urls: st.SearchStrategy[str], depth: int = 0) -> str:
    kind = draw(st.sampled_from(["string", "string", "number", "array", "inline", "junk"] if depth < 2
                                else ["string", "number", "junk"]))
    if kind == "string":
        text = draw(st.one_of(urls, _durations, _sizes, _zones, _levels, _words))
        return toml_literal(text, draw(_string_forms))
    if kind == "number":
        return draw(_numbers)
    if kind == "array":
        items = draw(st.lists(toml_values(urls, depth + 1), max_size=3))
        return "[" + ", ".join(items) + draw(st.sampled_from(["]", "]", ",]", ""]))
    if kind == "inline":
        pairs = draw(st.lists(st.tuples(_keys, toml_values(urls, depth + 1)), max_size=3))
        return "{ " + ", ".join(f"{key} = {value}" for key, value in pairs) + draw(st.sampled_from([" }", " }", ""]))
    return draw(_junk)


_keys = st.one_of(
    st.sampled_from(["name", "url", "interval", "language", "tags", "headers", "user_agent", "connect_timeout",
                     "read_timeout", "deadline", "max_body", "max_redirects", "global_limit", "per_host_limit",
                     "jitter", "backlog_window", "max_backoff", "retention", "fetch_log_keep", "timezone",
                     "log_level", "fetch.deadline", "poll.interval", "headers.Authorization", '"a b"', "'url'",
                     "feed", "Url", "intervall", "mode", "tags", "digest_every", "digest_at", "quiet_hours",
                     "rate_limit", "rate_window", "max_age", "retry_base", "retry_cap", "grouping_delay",
                     "duplicate_window", "send_timeout", "health_failures", "health_silence", "aliases", "terms",
                     "query", "exclude", "severity", "min_score", "enabled", "fold_diacritics", "languages"]),
    st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True).filter(_clean),
)
_headers = st.sampled_from(["[fetch]", "[poll]", "[[feed]]", "[feed]", "[feed.headers]", "[[feed.headers]]",
                            "[ fetch ]", "[fetch", "[[feed]", "[poll.x]", '["fetch"]', "[]", "[settings]",
                            "[[destination]]", "[destination]", "[destination.x]", "[entity.china]",
                            "[group.drones]", "[rule.r]", "[options]", "[rule]", "[entity.'a b']"])


request_headers = st.builds(
    lambda shape, name, secret, tail: shape.format(name=name, value=toml_literal(f"Bearer {secret}", "basic")) + tail,
    st.sampled_from(["headers = {{ {name} = {value} }}", "headers.{name} = {value}", "headers = {{ {name} = {value}",
                     "[feed.headers]\n{name} = {value}", "[[feed]]\nheaders = {{ {name} = {value}, X = 1 }}"]),
    st.sampled_from(["Authorization", "X-Api-Key", "'X Token'"]), secrets, st.sampled_from(["", " oops", ",", " }"]))


@st.composite
def tomlish_files(draw: st.DrawFn, urls: st.SearchStrategy[str], request_headers_too: bool = False) -> str:
    """Text that is mostly TOML in the files' vocabulary, often broken somewhere; REQUEST_HEADERS_TOO
    adds feeds' `headers` lines with secret values (feeds.toml only: elsewhere they are no headers)."""
    lines = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["pair", "pair", "pair", "pair", "header", "header", "comment", "blank", "junk"]
                                    + ["request header"] * request_headers_too))
        if kind == "pair":
            lines.append(f"{draw(_keys)}{draw(st.sampled_from([' = ', '=', ' ', ' == ']))}{draw(toml_values(urls))}")
        elif kind == "request header":  # a feed's header value is a secret too, however broken the line
            lines.append(draw(request_headers))
        elif kind == "header":
            lines.append(draw(_headers))
        elif kind == "comment":
            lines.append(f"# {draw(_words)}")
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", "   ", "\t"])))
        else:
            lines.append(draw(_junk))
    return draw(st.sampled_from(["\n", "\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))


# -- structurally valid TOML ---------------------------------------------------------------

_scalars = st.one_of(
    st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    _words, _durations, _sizes, _zones, _levels,
    st.datetimes(timezones=st.just(UTC)) | st.datetimes(), st.dates(), st.times(),
)


def _values(urls: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.one_of(_scalars, urls, st.lists(_scalars | urls, max_size=3),
                     st.dictionaries(_words.filter(bool), _scalars | urls, max_size=3))


_good_duration = st.sampled_from(["10m", "1h30m", "90", "5s", "2d", "1w"]) | st.integers(1, 10**6)
_good_count = st.integers(0, 200)
# Plausible values per known key, so that whole files often load and their edges get checked.
GOOD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "user_agent": _words, "max_body": st.sampled_from(["10MB", "512KB", "1GB", 2048]), "max_redirects": _good_count,
    "global_limit": _good_count, "per_host_limit": _good_count, "fetch_log_keep": _good_count,
    "jitter": st.floats(0, 0.6), "health_failures": _good_count, "health_silence": st.sampled_from([0, 1, 10, 0.5]),
}


def _table(known: list[str], urls: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    """Known keys, mostly with plausible values, and now and then an unknown one."""
    return st.fixed_dictionaries({}, optional={
        key: GOOD_VALUES.get(key, _good_duration) | GOOD_VALUES.get(key, _good_duration) | _values(urls)
        for key in [*known, "extra_key"]})


def valid_monitor_toml(urls: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({}, optional={
        "fetch": _table(["user_agent", "connect_timeout", "read_timeout", "deadline", "max_body", "max_redirects",
                         "global_limit", "per_host_limit"], urls) | _values(urls),
        "poll": _table(["interval", "jitter", "backlog_window", "max_backoff", "retention", "fetch_log_keep"], urls),
        "timezone": _zones | _values(urls), "log_level": _levels | _values(urls), "extra": _values(urls),
    })


def valid_feeds_toml(urls: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    feed = st.fixed_dictionaries(
        {"name": _words | st.sampled_from(["Kyiv Independent", "kyiv independent"]), "url": urls},
        optional={"interval": _durations | _values(urls), "language": st.sampled_from(["en", "uk-UA", "x", ""]),
                  "tags": st.lists(_words, max_size=3) | _values(urls),
                  "headers": st.dictionaries(st.sampled_from(["Authorization", "X-Token", "Host", "bad name"]),
                                             secrets.map(lambda s: f"Bearer {s}") | _values(urls), max_size=3),
                  "bogus": _values(urls)})
    return st.fixed_dictionaries({"feed": st.lists(feed, max_size=4) | _values(urls)}, optional={"x": _values(urls)})


def valid_alerts_toml(urls: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    destination = st.fixed_dictionaries(
        {"name": _words | st.just("mail"), "url": urls},
        optional={"mode": st.sampled_from(["immediate", "digest", "Digest"]) | _values(urls),
                  "digest_every": _durations, "digest_at": st.sampled_from(["08:00", "24:00", "8:00"]),
                  "quiet_hours": st.lists(st.sampled_from(["22:00", "07:00", "x"]), max_size=3),
                  "tags": st.lists(_words, max_size=2), "rate_limit": _values(urls), "rate_window": _durations,
                  "bogus": _values(urls)})
    return st.fixed_dictionaries({}, optional={
        "settings": _table(["max_age", "retry_base", "retry_cap", "grouping_delay", "duplicate_window",
                            "send_timeout", "health_failures", "health_silence"], urls),
        "destination": st.lists(destination, max_size=3) | _values(urls), "x": _values(urls)})


def dumps(data: dict[str, object]) -> str | None:
    """DATA as TOML, or None when tomlkit cannot write it (then the example is dropped)."""
    try:
        return tomlkit.dumps(data)
    except Exception:  # tomlkit refuses some shapes (mixed arrays of tables...): not what is tested
        return None


# -- checking an outcome ---------------------------------------------------------------------


@contextmanager
def folder(files: dict[str, str | bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        config_dir = Path(name)
        for file_name, content in files.items():
            path = config_dir / file_name
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8", newline="")
            else:
                path.write_bytes(content)
            path.chmod(0o600)
        yield config_dir


@contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """Every log record emitted meanwhile (the loaders warn about duplicate URLs and short intervals)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(level=logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_no_secret(text: str) -> None:
    assert SECRET_HEAD not in text and SECRET_TAIL not in text, f"a secret is shown: {text}"


def check_error(error: ConfigError, config_dir: Path, files: dict[str, str | bytes]) -> None:
    """Each problem names a file of the folder and, when it names a line, a line inside that file."""
    problems = error.errors if isinstance(error, ConfigErrors) else (error,)
    for problem in problems:
        assert problem.message
        assert problem.path is not None and (problem.path == config_dir or problem.path.name in files), problem
        if problem.line is None:
            continue
        content = files[problem.path.name]
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        lines = text.removeprefix("\ufeff").split("\n")
        assert 1 <= problem.line <= len(lines), (problem.line, len(lines), str(problem))
        if problem.column is not None:
            assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1, (problem.column, str(problem))
            if problem.context is not None:
                assert problem.context.rstrip().endswith("^"), problem.context
    event(f"{type(error).__name__}")
    assert_no_secret(str(error))


def check_load_config(files: dict[str, str | bytes]) -> None:
    with folder(files) as config_dir, logged() as records:
        try:
            config = load_config(config_dir)
        except ConfigError as error:
            check_error(error, config_dir, files)
        else:
            event("Config")
            assert isinstance(config, Config)
            for feed in config.feeds:
                assert feed.name and urlsplit(feed.url).scheme.lower() in ("http", "https")
                assert feed.interval > 0
        for record in records:
            assert_no_secret(record.getMessage())


feed_urls = secret_urls(["https://", "http://", "HTTPS://", "ftp://", "file://", "", "https:", "javascript:"])


@example(files={MONITOR_FILE: "[fetch]\ndeadline = " + "1" + "0" * 5000})
@example(files={FEEDS_FILE: '[[feed]]\nname = "a"\nurl = "https://u:Pzw1Qxq@example.org:99999/"'})
@example(files={FEEDS_FILE: b"[[feed]]\nname = '\xff'\n"})
# Leaks found by this test: a URL without its scheme, and a password holding a quote.
@example(files={FEEDS_FILE: 'feed = ["user:Pzw0Qxq@example.org/feed"]'})
@example(files={FEEDS_FILE: '[[feed]]\nname = "a"\nurl = "ftp://u:Pzw\'0Qxq@example.org/"'})
@example(files={MONITOR_FILE: '[poll]\ninterval = "https://u:Pzw0Qxq@example.org/"'})
# Found by this test: a header value written as a dotted key showed in the context of a later syntax error.
@example(files={FEEDS_FILE: '[[feed]]\nheaders.Authorization = "Bearer Pzw0Qxq" oops'})
@given(st.fixed_dictionaries({}, optional={MONITOR_FILE: tomlish_files(feed_urls),
                                           FEEDS_FILE: tomlish_files(feed_urls, request_headers_too=True)}))
def test_tomlish_monitor_and_feeds_files_load_or_point_at_a_line(files: dict[str, str | bytes]) -> None:
    check_load_config(files)


@given(valid_monitor_toml(feed_urls).map(dumps), valid_feeds_toml(feed_urls).map(dumps))
def test_valid_toml_with_random_keys_and_values_loads_or_points_at_a_line(monitor: str | None,
                                                                          feeds: str | None) -> None:
    check_load_config({name: text for name, text in ((MONITOR_FILE, monitor), (FEEDS_FILE, feeds))
                       if text is not None})


@given(st.binary(max_size=200), st.sampled_from([MONITOR_FILE, FEEDS_FILE]),
       st.sampled_from([b"", b"\xef\xbb\xbf", b"[fetch]\n", b"[[feed]]\nname = 'x'\n"]))
def test_raw_bytes_load_or_point_at_a_line(data: bytes, file_name: str, prefix: bytes) -> None:
    check_load_config({file_name: prefix + data})


# -- watch.toml --------------------------------------------------------------------------------


@example(text="[rule.r]\nquery = '(a'\r\n")
@example(text="[options]\nx = 1" + "0" * 5000)  # found by this test: tomllib's bare ValueError escaped
@given(tomlish_files(st.sampled_from(["China", "@china", "#drones", "drone*", "=PRC", "a NEAR/5 b", "NOT x",
                                      "(a", "*", "title:x"])))
def test_any_watch_file_loads_or_points_at_a_line_with_a_caret(text: str) -> None:
    files: dict[str, str | bytes] = {"watch.toml": text}
    with folder(files) as config_dir:
        try:
            watch = load_watch(config_dir / "watch.toml")
        except ConfigError as error:
            check_error(error, config_dir, files)
            return
    assert isinstance(watch, Watch)
    event("Watch")


# -- alerts.toml and secrets.toml ---------------------------------------------------------------

destination_urls = secret_urls(["mailto://", "mailtos://", "json://", "ntfys://", "xyz://", "tgram://", "", "json:/",
                                "${"]) | st.sampled_from(["json://${TOKEN}@localhost/x", "json://localhost/${MISSING}",
                                                          "mailtos://u:${SMTP_PASSWORD}@example.org", "${TOKEN}"])


@st.composite
def secrets_files(draw: st.DrawFn) -> str:
    """secrets.toml: mostly NAME = "secret" lines, some of them broken."""
    lines = []
    for name in draw(st.lists(st.sampled_from(["TOKEN", "SMTP_PASSWORD", "9BAD", "a b", "X"]), max_size=4)):
        value = draw(st.one_of(secrets.map(lambda s: toml_literal(s, "basic")), secrets.map(lambda s: f"[{s!r}]"),
                               secrets.map(lambda s: toml_literal(s, "broken")), st.just("42")))
        lines.append(f"{name if ' ' not in name else repr(name)} = {value}")
    return "\n".join(lines)


# Leaks found by this test: a URL in a duration or time key, and a password holding a quote.
# Found by this test: an unreadable secrets.toml and an undefined ${NAME} raised TypeError (no url).
@example(alerts='[[destination]]\nname = "0"\nurl = "json://localhost/${MISSING}"\n', secrets_text='TOKEN = "Pzw0Qxq')
@example(alerts='[settings]\nmax_age = "mailto://user:Pzw0Qxq@example.org/feed"\n', secrets_text=None)
@example(alerts='destination = "json:/user:Pzw0Qxq@example.org/feed"\n', secrets_text=None)  # a mistyped "//"
@example(alerts='[[destination]]\nname = "x"\nurl = "json://localhost"\ndigest_at = "json://u:Pzw0Qxq@h"\n',
         secrets_text=None)
@example(alerts='destination = [{name = "x", url = "json://u:Pzw\'0Qxq@localhost/x", bogus = 1}]\n',
         secrets_text=None)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the strategy is big, on purpose
@given(tomlish_files(destination_urls) | valid_alerts_toml(destination_urls).map(dumps).filter(bool),
       st.none() | secrets_files())
def test_any_alerts_file_loads_or_points_at_a_line_and_never_shows_a_secret(alerts: str,
                                                                              secrets_text: str | None) -> None:
    files: dict[str, str | bytes] = {ALERTS_FILE: alerts}
    if secrets_text is not None:
        files[SECRETS_FILE] = secrets_text
    with folder(files) as config_dir, logged() as records:
        try:
            loaded = load_alerts(config_dir, {"TOKEN": "Pzwenv0Qxq"})
        except ConfigError as error:
            check_error(error, config_dir, files)
        else:
            event("AlertsConfig")
            assert isinstance(loaded, AlertsConfig)
            for destination in loaded.destinations:
                assert_no_secret(destination.safe_url)
                assert_no_secret(repr(destination))
            for warning in loaded.warnings:
                assert_no_secret(warning)
        for record in records:
            assert_no_secret(record.getMessage())
