"""alerts.toml, apprise.yml and secrets: loading, located errors, and secrets that never show."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from monitor.alert.apprise_urls import default_name, safe_url
from monitor.alert.destinations import AlertsConfig, load_alerts
from monitor.config.load import ConfigErrors
from monitor.errors import ConfigError
from monitor.models import AlertSettings, Destination

REPO = Path(__file__).resolve().parent.parent
SHIPPED = (REPO / "config" / "alerts.toml").read_text()
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def folder(tmp_path: Path, alerts: str | None = None, **files: str) -> Path:
    """A private config folder holding exactly the given files (secrets_toml -> secrets.toml)."""
    config_dir = tmp_path / "conf"
    config_dir.mkdir(mode=0o700, parents=True)
    if alerts is not None:
        files["alerts_toml"] = alerts
    for name, text in files.items():
        path = config_dir / name.replace("_", ".")
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    return config_dir


def load(config_dir: Path, env: dict[str, str] | None = None) -> AlertsConfig:
    return load_alerts(config_dir, env or {})


def errors_of(config_dir: Path, env: dict[str, str] | None = None) -> list[ConfigError]:
    with pytest.raises(ConfigError) as caught:
        load(config_dir, env)
    error = caught.value
    return list(error.errors) if isinstance(error, ConfigErrors) else [error]


def only_error(config_dir: Path, env: dict[str, str] | None = None) -> ConfigError:
    errors = errors_of(config_dir, env)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def destination(body: str) -> str:
    return f'[[destination]]\nname = "d"\n{body}\n'


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------


def test_no_alerts_file_means_no_destinations_and_default_settings(tmp_path: Path) -> None:
    assert load(folder(tmp_path)) == AlertsConfig(destinations=(), settings=AlertSettings(), warnings=())


def test_the_shipped_file_configures_nothing_and_shows_the_real_defaults(tmp_path: Path) -> None:
    assert load(folder(tmp_path, SHIPPED)).destinations == ()
    settings_part, examples = SHIPPED.split("# Destinations:")
    uncommented = re.sub(r"(?m)^# ([a-z_]+ = .*)$", r"\1", settings_part)
    assert set(tomllib.loads(uncommented)["settings"]) == set(AlertSettings.__dataclass_fields__)
    assert load(folder(tmp_path / "explicit", uncommented)).settings == AlertSettings()
    assert "[[destination]]" not in re.sub(r"(?m)^#.*$", "", SHIPPED)


def test_the_shipped_examples_are_valid_destinations(tmp_path: Path) -> None:
    examples = SHIPPED.split('# Examples (remove the leading "# " to use one):\n')[1]
    env = {"SMTP_PASSWORD": "pw", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": "987654",
           "SLACK_TOKEN_A": "T1JJ3T3L2", "SLACK_TOKEN_B": "A1BRTD4JD", "SLACK_TOKEN_C": "TIiajkdnlazkcOXrIdevi7FQ",
           "NTFY_TOKEN": "tk_ntfytoken"}
    loaded = load(folder(tmp_path, re.sub(r"(?m)^# ", "", examples)), env)
    assert [(d.name, d.mode) for d in loaded.destinations] == [
        ("newsroom-mail", "digest"), ("telegram", "immediate"), ("slack-morning", "digest"),
        ("ops-ntfy", "immediate")]


def test_every_key_is_converted(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, """\
[settings]
max_age = "12h"
retry_base = "30s"
retry_cap = "2h"
grouping_delay = "20s"
duplicate_window = "1d"
send_timeout = 10
health_failures = 3
health_silence = 0

[[destination]]
name = "desk-mail"
url = "mailto://127.0.0.1:2525?from=alerts@example.com&to=desk@example.com"
tags = ["drones", "sanctions"]
mode = "digest"
digest_every = "6h"
quiet_hours = ["22:00", "07:00"]
rate_limit = 10
rate_window = "30m"

[[destination]]
name = "hook"
url = "json://127.0.0.1:8080/hook"
mode = "digest"
digest_at = "08:00"
""")
    loaded = load(config_dir)
    assert loaded.settings == AlertSettings(max_age=43200, retry_base=30, retry_cap=7200, grouping_delay=20,
                                            duplicate_window=86400, send_timeout=10, health_failures=3,
                                            health_silence=0)
    mail, hook = loaded.destinations
    assert mail == Destination(
        name="desk-mail", url="mailto://127.0.0.1:2525?from=alerts@example.com&to=desk@example.com",
        safe_url=mail.safe_url, tags=("drones", "sanctions"), mode="digest", digest_every=21600,
        quiet_hours=("22:00", "07:00"), rate_limit=10, rate_window=1800)
    assert mail.safe_url == "mailto://127.0.0.1:2525?from=alerts@example.com&to=desk@example.com"
    assert (hook.name, hook.mode, hook.digest_at, hook.digest_every, hook.tags) == (
        "hook", "digest", "08:00", None, ())
    assert (hook.rate_limit, hook.rate_window) == (None, 3600)
    assert loaded.warnings == ()


def test_an_apprise_yaml_file_adds_immediate_destinations_with_its_tags(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, destination('url = "json://127.0.0.1/a"').replace('"d"', '"json-127.0.0.1"'),
                        apprise_yml=f"""\
version: 1
urls:
  - json://user:yamlpass@127.0.0.1:8080/hook:
      tag: admin, ops
  - tgram://{BOT_TOKEN}/987654:
      tag: drones
""")
    toml_one, hook, telegram = load(config_dir).destinations
    assert toml_one.name == "json-127.0.0.1"
    assert (hook.name, hook.tags, hook.mode) == ("json-127.0.0.1-2", ("admin", "ops"), "immediate")
    assert (telegram.name, telegram.tags) == ("tgram", ("drones",))
    assert "yamlpass" in hook.url and "yamlpass" not in hook.safe_url
    assert BOT_TOKEN.split(":")[1] not in telegram.safe_url
    assert telegram.url.startswith("tgram://")


def test_an_apprise_yaml_file_apprise_cannot_read_is_an_error_without_its_text(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, apprise_yaml="urls:\n  - tgram://not-a-valid-SECRETTOKEN/1\n  - json://ok\n")
    error = only_error(config_dir)
    assert error.path == config_dir / "apprise.yaml"
    assert error.line == 2 and "apprise cannot use 'tgram://***'" in str(error)  # the line at fault
    assert "SECRETTOKEN" not in str(error)


def test_apprise_yml_and_yaml_together_are_refused(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, apprise_yml="urls:\n  - json://a\n", apprise_yaml="urls:\n  - json://b\n")
    assert "keep one" in str(only_error(config_dir))


# --------------------------------------------------------------------------
# secrets
# --------------------------------------------------------------------------


def test_secrets_come_from_the_secrets_file_then_credentials_then_the_environment(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "TOKEN").write_text("from-credential\n")
    (credentials / "USER").write_text("credential-user\r\n")
    config_dir = folder(tmp_path, """\
[[destination]]
name = "hook"
url = "json://${USER}:${PASSWORD}@127.0.0.1/${TOKEN}/${PATHPART}"
""", secrets_toml='PASSWORD = "file-password"\nPATHPART = "from-file"\n')
    env = {"CREDENTIALS_DIRECTORY": str(credentials), "PASSWORD": "env-password", "TOKEN": "env-token",
           "PATHPART": "env-part", "USER": "env-user"}
    hook, = load(config_dir, env).destinations
    assert hook.url == "json://credential-user:file-password@127.0.0.1/from-credential/from-file"
    del env["CREDENTIALS_DIRECTORY"]
    hook, = load(config_dir, env).destinations
    assert hook.url == "json://env-user:file-password@127.0.0.1/env-token/from-file"
    for secret in ("file-password", "from-credential", "from-file", "env-token"):
        assert secret not in hook.safe_url


def test_destinations_are_shown_as_typed_with_literal_secrets_masked(tmp_path: Path) -> None:
    """Not apprise's expanded URL (overflow=upstream&retry=0...): what the user wrote, its
    ${NAME}s as written and every literal token apprise keeps private masked, even beside
    a ${NAME} (a bot token typed into a URL whose chat comes from the secrets)."""
    config_dir = folder(tmp_path, f"""\
[[destination]]
name = "bot"
url = "tgram://{BOT_TOKEN}/${{CHAT}}"

[[destination]]
name = "hook"
url = "json://alerts:pa55word@127.0.0.1:8080/hook?-token=t0ken-value&:field=value"
""")
    bot, hook = load(config_dir, {"CHAT": "-100123456"}).destinations
    assert bot.safe_url.endswith("/${CHAT}") and bot.safe_url.startswith("tgram://")
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in bot.safe_url and "-100123456" not in bot.safe_url
    assert hook.safe_url.startswith("json://alerts:***@127.0.0.1:8080/hook?")
    assert "pa55word" not in hook.safe_url and "t0ken-value" not in hook.safe_url
    assert "overflow" not in hook.safe_url and "overflow" not in bot.safe_url


def test_substituted_values_are_masked_even_where_apprise_would_show_them(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, destination('url = "ntfy://127.0.0.1/${TOPIC}?+X-Key=${KEY}"'))
    only, = load(config_dir, {"TOPIC": "hidden-topic-name", "KEY": "k3y-value"}).destinations
    assert "hidden-topic-name" in only.url
    assert "hidden-topic-name" not in only.safe_url and "k3y-value" not in only.safe_url


def test_an_undefined_secret_names_the_destination_and_variable_never_a_value(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, """\
# comment
[[destination]]
name = "desk"
url = "mailtos://alerts:${SMTP_PASSWORD}@mail.example.org/${KNOWN}?to=${MISSING_TOO}"
""")
    error = only_error(config_dir, {"KNOWN": "known-secret-value"})
    assert (error.path, error.line, error.key) == (config_dir / "alerts.toml", 4, "destination[0].url")
    assert "'desk'" in error.message and "${SMTP_PASSWORD} and ${MISSING_TOO} are not defined" in error.message
    assert "known-secret-value" not in str(error)


def test_a_secrets_file_with_a_bad_entry_is_located_without_its_value(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, secrets_toml='GOOD = "x"\nNUMBER = 123456\n"bad name" = "s3cret"\n')
    errors = errors_of(config_dir)
    assert [(e.line, e.key) for e in errors] == [(2, "NUMBER"), (3, '"bad name"')]
    assert "123456" not in str(errors[0]) and "s3cret" not in str(errors[1])
    broken = folder(tmp_path / "broken", secrets_toml='TOKEN = "s3cret-unclosed\n')
    syntax = only_error(broken)
    assert syntax.line == 1 and syntax.context is None and "s3cret" not in str(syntax)


def test_a_secrets_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, secrets_toml='TOKEN = "x"\n')
    assert load(config_dir).warnings == ()
    (config_dir / "secrets.toml").chmod(0o644)
    warning, = load(config_dir).warnings
    assert "secrets.toml is readable by group/others (mode 0644): chmod 600 it" in warning


def test_an_alerts_file_others_can_read_is_warned_about_only_with_a_literal_secret(tmp_path: Path) -> None:
    references = folder(tmp_path / "a", destination('url = "json://user:${PASSWORD}@127.0.0.1/hook"'))
    (references / "alerts.toml").chmod(0o644)
    assert load(references, {"PASSWORD": "pw"}).warnings == ()
    for index, url in enumerate(["json://user:literal@127.0.0.1/hook", f"tgram://{BOT_TOKEN}/1",
                                 "json://127.0.0.1/hook?+Authorization=Bearer%20abc"]):
        config_dir = folder(tmp_path / str(index), destination(f'url = "{url}"'))
        assert load(config_dir).warnings == ()
        (config_dir / "alerts.toml").chmod(0o640)
        warning, = load(config_dir).warnings
        assert "(destination 'd')" in warning and "(mode 0640)" in warning and "secrets.toml" in warning


def test_an_apprise_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, apprise_yml="urls:\n  - json://127.0.0.1/hook\n")
    (config_dir / "apprise.yml").chmod(0o604)
    warning, = load(config_dir).warnings
    assert "apprise.yml is readable by group/others (mode 0604)" in warning


# --------------------------------------------------------------------------
# validation errors: file, line, key
# --------------------------------------------------------------------------

BAD = [
    ('[[destination]]\nname = "d"\nurl = "json://h"\nmode = "digst"\n', 4, "destination[0].mode",
     "did you mean 'digest'?"),
    (destination('url = "json://h"\nmode = "digest"'), 4, "destination[0].mode", "needs digest_every"),
    (destination('url = "json://h"\nmode = "digest"\ndigest_every = "6h"\ndigest_at = "08:00"'), 6,
     "destination[0].digest_at", "not both"),
    (destination('url = "json://h"\ndigest_every = "6h"'), 4, "destination[0].digest_every",
     'only used with mode = "digest"'),
    (destination('url = "json://h"\nmode = "digest"\ndigest_at = "8:00"'), 5, "destination[0].digest_at",
     "HH:MM"),
    (destination('url = "json://h"\nmode = "digest"\ndigest_every = "0s"'), 5, "destination[0].digest_every",
     "longer than 0"),
    (destination('url = "json://h"\nquiet_hours = ["22:00"]'), 4, "destination[0].quiet_hours",
     "a start and an end"),
    (destination('url = "json://h"\nquiet_hours = ["22:00", "25:00"]'), 4, "destination[0].quiet_hours",
     "'25:00'"),
    (destination('url = "json://h"\nrate_limit = 0'), 4, "destination[0].rate_limit", "at least 1"),
    (destination('url = "json://h"\nrate_limit = "10"'), 4, "destination[0].rate_limit", "whole number"),
    (destination('url = "json://h"\ntags = ["ok", ""]'), 4, "destination[0].tags", "non-empty strings"),
    (destination('url = "json://h"\ntag = ["a"]'), 4, "destination[0].tag", "did you mean 'tags'?"),
    (destination('url = "json://h"\nmax_age = "1h"'), 4, "destination[0].max_age",
     "did you mean 'settings.max_age'? it belongs in [settings]"),
    (destination("url = 42"), 3, "destination[0].url", "expected an apprise URL string, got an integer"),
    ('[[destination]]\nurl = "json://h"\n', 1, "destination[0]", "missing required key 'name'"),
    ('[[destination]]\nname = " d"\nurl = "json://h"\n', 2, "destination[0].name", "leading or trailing"),
    ('[destination]\nname = "d"\nurl = "json://h"\n', 1, "destination", "double brackets"),
    ('[settings]\nretry_base = "soon"\n', 2, "settings.retry_base", "invalid duration"),
    ('[settings]\nretry_base = "2h"\nretry_cap = "1h"\n', 3, "settings.retry_cap", "shorter than retry_base"),
    ('[settings]\nhealth_failures = 0\n', 2, "settings.health_failures", "at least 1"),
    ('[settings]\nhealth_silence = 0.5\n', 2, "settings.health_silence", "0 (off) or at least 1"),
    ('[settings]\nmax_ages = "1h"\n', 2, "settings.max_ages", "did you mean 'max_age'?"),
    ('[settings]\nmode = "digest"\n', 2, "settings.mode", "belongs in a [[destination]] table"),
    ('[[destinations]]\nname = "d"\n', 1, "destinations", "did you mean 'destination'?"),
]


@pytest.mark.parametrize(("text", "line", "key", "expected"), BAD)
def test_wrong_values_are_located(tmp_path: Path, text: str, line: int, key: str, expected: str) -> None:
    error = only_error(folder(tmp_path, text))
    assert (error.path, error.line, error.key) == (tmp_path / "conf" / "alerts.toml", line, key), str(error)
    assert expected in error.message


def test_a_url_apprise_cannot_use_is_located_and_masked(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, """\
[[destination]]
name = "local-mail"
url = "mailto://user:Sup3rSecret@127.0.0.1"

[[destination]]
name = "typo"
url = "tgrm://${TOKEN}/1"
""")
    mail, typo = errors_of(config_dir, {"TOKEN": "tok-SECRET-123"})
    assert (mail.line, mail.key, typo.line, typo.key) == (3, "destination[0].url", 7, "destination[1].url")
    assert "'mailto://***'" in mail.message and "from=ADDRESS" in mail.message
    assert "'tgrm'" in typo.message and "did you mean 'tgram'?" in typo.message
    for error in (mail, typo):
        assert "Sup3rSecret" not in str(error) and "tok-SECRET" not in str(error) and error.context is None


def test_duplicate_names_ignore_case_and_point_at_both(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, '[[destination]]\nname = "Desk"\nurl = "json://a"\n\n'
                                  '[[destination]]\nname = "desk"\nurl = "json://b"\n')
    error = only_error(config_dir)
    assert (error.line, error.key) == (6, "destination[1].name")
    assert "destination[0] on line 2 already uses it" in error.message


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, '[settings]\nsend_timeout = "0s"\n\n[[destination]]\nname = "d"\n'
                                  'url = "json://h"\nmode = "later"\n', secrets_toml="X = 1\n")
    errors = errors_of(config_dir)
    assert sorted((e.path.name, e.key) for e in errors) == [
        ("alerts.toml", "destination[0].mode"), ("alerts.toml", "settings.send_timeout"), ("secrets.toml", "X")]


def test_a_syntax_error_on_a_url_line_never_shows_the_token(tmp_path: Path) -> None:
    config_dir = folder(tmp_path, f'[[destination]]\nname = "d"\nurl = "tgram://{BOT_TOKEN}/1\n')
    error = only_error(config_dir)
    assert error.line == 3 and "invalid TOML" in error.message
    assert "tgram://***" in (error.context or "") and BOT_TOKEN not in str(error)


def test_an_unknown_key_holding_a_url_is_shown_masked(tmp_path: Path) -> None:
    error, missing_url = errors_of(folder(tmp_path, f'[[destination]]\nname = "d"\nuri = "tgram://{BOT_TOKEN}/1"\n'))
    assert "missing required key 'url'" in missing_url.message
    assert (error.line, error.key) == (3, "destination[0].uri") and "did you mean 'url'?" in error.message
    assert error.context is not None and 'uri = "tgram://***"' in error.context and BOT_TOKEN not in str(error)


def test_a_context_line_shows_the_caret_under_the_value(tmp_path: Path) -> None:
    error = only_error(folder(tmp_path, destination('url = "json://h"\nmode  =  "soon"')))
    assert error.context == '    mode  =  "soon"\n' + " " * 13 + "^"


# --------------------------------------------------------------------------
# safe_url and default_name
# --------------------------------------------------------------------------

SECRET_URLS = [
    ("mailto://user:Pa55word@example.com", ["Pa55word"]),
    ("mailtos://user:Pa55word@mail.example.org?to=desk@example.org", ["Pa55word"]),
    ("mailto://user@example.com?pass=Pa55word", ["Pa55word"]),
    (f"tgram://{BOT_TOKEN}/987654", [BOT_TOKEN, BOT_TOKEN.split(":")[1]]),
    ("json://user:Pa55word@localhost:8080/hook", ["Pa55word"]),
    ("json://localhost/hook?+Authorization=Bearer%20T0kenValue", ["T0kenValue"]),
    ("discord://1234567890/WebhookT0kenValue", ["WebhookT0kenValue"]),
    ("ntfy://user:Pa55word@ntfy.example.org/topic", ["Pa55word"]),
    ("ntfys://tk_T0kenValue@ntfy.sh/topic", ["tk_T0kenValue", "T0kenValue"]),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", ["TIiajkdnlazkcOXrIdevi7FQ", "A1BRTD4JD"]),
    ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", ["TIiajkdnlazkcOXrIdevi7FQ"]),
    ("matrix://user:Pa55word@matrix.example.org/#room", ["Pa55word"]),
    ("mailto://user:Pa55word@127.0.0.1", ["Pa55word", "user"]),  # apprise cannot load it
    ("nosuchscheme://user:Pa55word@host/T0kenValue", ["Pa55word", "T0kenValue", "host"]),
]


@pytest.mark.parametrize(("url", "secrets"), SECRET_URLS)
def test_safe_url_never_shows_a_secret(url: str, secrets: list[str]) -> None:
    shown = safe_url(url)
    assert shown and shown != url
    for secret in secrets:
        assert secret not in shown


def test_safe_url_keeps_what_is_not_secret() -> None:
    assert safe_url("mailtos://user:pw@mail.example.org?to=desk@example.org").startswith(
        "mailtos://user:****@mail.example.org/desk%40example.org?")
    assert safe_url("mailto://user:Pa55word@127.0.0.1") == "mailto://***"
    assert safe_url("not a url at all: secret") == "***"


@pytest.mark.parametrize(("url", "name"), [
    ("mailto://127.0.0.1:2525?from=a@example.com&to=d@example.com", "mailto-127.0.0.1"),
    ("mailtos://user:pw@Mail.Example.org?to=desk@example.org", "mailtos-mail.example.org"),
    ("json://localhost:8080/hook", "json-localhost"),
    (f"tgram://{BOT_TOKEN}/987654", "tgram"),
    ("discord://1234567890/WebhookT0kenValue", "discord"),
    ("ntfys://tk_T0kenValue@ntfy.sh/topic", "ntfys-ntfy.sh"),
    ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack"),
    ("nosuchscheme://secret-host/x", "nosuchscheme"),
])
def test_default_name_is_scheme_and_host_never_a_token(url: str, name: str) -> None:
    assert default_name(url) == name


def test_loading_keeps_apprise_log_records_with_secrets_out_of_the_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    config_dir = folder(tmp_path, destination('url = "tgram://notAToken-SECRETVALUE/1"'))
    error = only_error(config_dir)
    assert "SECRETVALUE" not in str(error) and "SECRETVALUE" not in caplog.text


def test_url_pieces_are_every_part_that_may_hold_a_secret() -> None:
    from monitor.alert.secrets import url_pieces

    pieces = url_pieces("mailtos://user:pa%20ss@mail.example.org/to?from=a+b&pass=t0k3n")
    assert {"user", "pa%20ss", "mail.example.org", "to", "a+b", "t0k3n"} <= set(pieces)
