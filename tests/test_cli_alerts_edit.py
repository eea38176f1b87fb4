"""`alerts add|remove|destinations`: comment-preserving edits of alerts.toml, and no secret in any output."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from monitor.alert.destinations import load_alerts
from monitor.config.paths import init_config_dir
from monitor.edit.alerts import add_destination, remove_destination
from monitor.errors import ConfigError, MonitorError, UsageError
from monitor.models import Destination
from test_cli import monitor

REPO = Path(__file__).resolve().parent.parent
SHIPPED = (REPO / "config" / "alerts.toml").read_text()
SECRET = "Sup3r-Secret-Pa55"

HAND_WRITTEN = """\
# My destinations   [[destination]] in a comment
[settings]
retry_base = "2m"   # slower first retry

# The desk: a description
# over two lines
[[destination]]
name = "Desk"
url = "json://127.0.0.1:8080/desk"
tags = [
  "drones",  # why drones
  "admin",
]

# Ops webhook
[[destination]]
name = "ops"
url = "json://user:${OPS_PASSWORD}@127.0.0.1:8080/ops"
mode = "digest"
digest_at = "08:00"
"""
ENV = {"OPS_PASSWORD": "ops-password-value"}


def add(config_dir: Path, url: str, **options: object) -> Destination:
    settings = {"name": None, "tags": (), "mode": "immediate", "digest_every": None, "digest_at": None,
                "env": ENV}
    return add_destination(config_dir, url, **{**settings, **options})


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "conf"
    init_config_dir(path, no_feeds=True)
    (path / "alerts.toml").write_text(HAND_WRITTEN)
    return path


def alerts_text(config_dir: Path) -> str:
    return (config_dir / "alerts.toml").read_text()


def names(config_dir: Path) -> list[str]:
    return [destination.name for destination in load_alerts(config_dir, ENV).destinations]


# --------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------


def test_add_appends_and_keeps_every_byte_before_it(config_dir: Path) -> None:
    added = add(config_dir, "mailto://127.0.0.1:2525?from=a@example.com&to=d@example.com", name="mail",
                tags=["sanctions"], mode="digest", digest_every="360m")
    assert (added.name, added.tags, added.mode, added.digest_every) == ("mail", ("sanctions",), "digest", 21600)
    assert alerts_text(config_dir) == HAND_WRITTEN + (
        '\n[[destination]]\nname = "mail"\n'
        'url = "mailto://127.0.0.1:2525?from=a@example.com&to=d@example.com"\n'
        'tags = ["sanctions"]\nmode = "digest"\ndigest_every = "6h"\n')
    assert names(config_dir) == ["Desk", "ops", "mail"]


def test_remove_round_trips_to_the_identical_file(config_dir: Path) -> None:
    add(config_dir, "json://127.0.0.1/new", name="new", mode="digest", digest_at="07:30")
    remove_destination(config_dir, "NEW")
    assert alerts_text(config_dir) == HAND_WRITTEN


def test_remove_cuts_a_table_with_its_own_comment_only(config_dir: Path) -> None:
    remove_destination(config_dir, "Desk")
    text = alerts_text(config_dir)
    assert text == HAND_WRITTEN.replace(
        '# The desk: a description\n# over two lines\n[[destination]]\nname = "Desk"\n'
        'url = "json://127.0.0.1:8080/desk"\ntags = [\n  "drones",  # why drones\n  "admin",\n]\n\n', "")
    assert names(config_dir) == ["ops"]
    remove_destination(config_dir, "ops")
    assert tomllib.loads(alerts_text(config_dir)) == {"settings": {"retry_base": "2m"}}
    assert alerts_text(config_dir).startswith("# My destinations")


def test_a_new_alerts_file_starts_from_the_template_and_is_private(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    add(config_dir, "json://localhost/hook")
    path = config_dir / "alerts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(SHIPPED)
    remove_destination(config_dir, "json-localhost")
    assert path.read_text() == SHIPPED and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_names_default_to_scheme_and_host_made_unique(config_dir: Path) -> None:
    first = add(config_dir, "json://localhost/a")
    second = add(config_dir, "json://LOCALHOST/b")
    telegram = add(config_dir, "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/42")
    assert (first.name, second.name, telegram.name) == ("json-localhost", "json-localhost-2", "tgram")


def test_a_secret_reference_is_written_as_given(config_dir: Path) -> None:
    added = add(config_dir, "json://user:${OPS_PASSWORD}@127.0.0.1/other", name="other")
    assert 'url = "json://user:${OPS_PASSWORD}@127.0.0.1/other"' in alerts_text(config_dir)
    assert ENV["OPS_PASSWORD"] not in alerts_text(config_dir)
    assert added.url == "json://user:ops-password-value@127.0.0.1/other"
    assert ENV["OPS_PASSWORD"] not in added.safe_url


@pytest.mark.parametrize(("url", "options", "expected"), [
    ("json://127.0.0.1/x", {"name": "desk"}, "already exists"),
    ("nosuch://127.0.0.1/x", {}, "no service for the scheme 'nosuch'"),
    ("mailto://user:pw@127.0.0.1", {}, "'mailto://***'"),
    ("json://127.0.0.1/${UNDEFINED_SECRET}", {}, "${UNDEFINED_SECRET} is not defined"),
    ("json://127.0.0.1/x", {"mode": "digest"}, "exactly one of --digest-every"),
    ("json://127.0.0.1/x", {"mode": "digest", "digest_every": "1h", "digest_at": "08:00"}, "exactly one"),
    ("json://127.0.0.1/x", {"digest_every": "1h"}, "need --mode digest"),
    ("json://127.0.0.1/x", {"mode": "digest", "digest_at": "24:00"}, "invalid --digest-at"),
    ("json://127.0.0.1/x", {"mode": "digest", "digest_every": "often"}, "invalid --digest-every"),
    ("json://127.0.0.1/x", {"mode": "later"}, "--mode must be immediate or digest"),
    ("json://127.0.0.1/x", {"tags": ["ok", " "]}, "tag ' ' is empty"),
    ("json://127.0.0.1/x", {"name": "bad\tname"}, "control characters"),
    ("  ", {}, "the URL is empty"),
])
def test_a_refused_add_leaves_the_file_byte_identical(config_dir: Path, url: str, options: dict,
                                                      expected: str) -> None:
    before = (config_dir / "alerts.toml").read_bytes()
    with pytest.raises(UsageError) as caught:
        add(config_dir, url, **options)
    assert expected in str(caught.value)
    assert (config_dir / "alerts.toml").read_bytes() == before


def test_an_add_to_a_broken_file_reports_its_error_and_changes_nothing(config_dir: Path) -> None:
    broken = HAND_WRITTEN.replace('digest_at = "08:00"', 'digest_at = "8am"')
    (config_dir / "alerts.toml").write_text(broken)
    with pytest.raises(ConfigError) as caught:
        add(config_dir, "json://127.0.0.1/x")
    assert (caught.value.line, caught.value.key) == (20, "destination[1].digest_at")
    assert alerts_text(config_dir) == broken


def test_an_inline_destination_array_is_left_to_the_user(config_dir: Path) -> None:
    inline = 'destination = [{name = "a", url = "json://127.0.0.1/a"}]\n'
    (config_dir / "alerts.toml").write_text(inline)
    with pytest.raises(UsageError, match="not \\[\\[destination\\]\\] tables"):
        add(config_dir, "json://127.0.0.1/x")
    with pytest.raises(UsageError, match="not \\[\\[destination\\]\\] tables"):
        remove_destination(config_dir, "a")
    assert alerts_text(config_dir) == inline


def test_remove_works_on_an_otherwise_broken_file_and_names_what_exists(config_dir: Path) -> None:
    broken = HAND_WRITTEN.replace('mode = "digest"', 'mode = "sometimes"')
    (config_dir / "alerts.toml").write_text(broken)
    with pytest.raises(UsageError) as caught:
        remove_destination(config_dir, "nope")
    assert "(destinations: 'Desk', 'ops')" in str(caught.value)
    remove_destination(config_dir, "ops")
    assert names(config_dir) == ["Desk"]


def test_a_destination_from_apprise_yml_is_not_removed_from_alerts_toml(config_dir: Path) -> None:
    (config_dir / "apprise.yml").write_text("urls:\n  - json://127.0.0.1/yaml\n")
    assert names(config_dir) == ["Desk", "ops", "json-127.0.0.1"]
    with pytest.raises(UsageError, match="destinations from apprise.yml are removed by editing that file"):
        remove_destination(config_dir, "json-127.0.0.1")
    assert alerts_text(config_dir) == HAND_WRITTEN


def test_remove_from_a_file_with_a_syntax_error_never_shows_a_token(config_dir: Path) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    (config_dir / "alerts.toml").write_text(f'[[destination]]\nname = "t"\nurl = "tgram://{token}/1\n')
    with pytest.raises(ConfigError) as caught:
        remove_destination(config_dir, "t")
    assert caught.value.line == 3 and token not in str(caught.value) and "tgram://***" in str(caught.value)


def test_an_unusual_layout_is_refused_rather_than_rewritten(config_dir: Path) -> None:
    odd = ('[[destination]]\nname = "a"\nurl = "json://127.0.0.1/a"\n\n[settings]\nretry_base = "2m"\n\n'
           '[destination.extra]  # a sub-table of destination "a", far from it\nnote = "x"\n')
    (config_dir / "alerts.toml").write_text(odd)
    with pytest.raises(MonitorError):
        remove_destination(config_dir, "a")
    assert alerts_text(config_dir) == odd


# --------------------------------------------------------------------------
# the command line, as a real subprocess
# --------------------------------------------------------------------------


@pytest.fixture
def initialised(env: dict[str, str]) -> dict[str, str]:
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    return env


def test_init_ships_a_private_alerts_file_with_no_destination(initialised: dict[str, str]) -> None:
    path = Path(initialised["MONITOR_CONFIG"]) / "alerts.toml"
    assert path.read_text() == SHIPPED and stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = monitor("alerts", "destinations", env=initialised, check=True)
    assert listed.stdout == "" and "no destinations" in listed.stderr
    assert monitor("alerts", "destinations", "--json", env=initialised, check=True).stdout == ""


def test_a_url_read_from_stdin_never_appears_in_any_output(initialised: dict[str, str]) -> None:
    env = initialised
    url = f"json://alerts:{SECRET}@127.0.0.1:8080/hook"
    added = monitor("alerts", "add", "-", "--tag", "drones", "--tag", "admin", "--digest-every", "6h",
                    env=env, input=url + "\nsecond line is ignored\n", check=True)
    assert added.stdout.startswith("added destination json-127.0.0.1 (json://alerts:***@127.0.0.1:8080/hook)")
    listed = monitor("alerts", "destinations", env=env, check=True)
    assert "json-127.0.0.1" in listed.stdout and "every 6h" in listed.stdout and "drones,admin" in listed.stdout
    rows = [json.loads(line) for line in monitor("alerts", "destinations", "--json", env=env,
                                                 check=True).stdout.splitlines()]
    assert rows == [{"name": "json-127.0.0.1", "safe_url": rows[0]["safe_url"], "tags": ["drones", "admin"],
                     "mode": "digest", "digest_every": "6h", "digest_at": None, "quiet_hours": None,
                     "rate_limit": None, "rate_window": None}]
    assert SECRET in (Path(env["MONITOR_CONFIG"]) / "alerts.toml").read_text()
    removed = monitor("alerts", "remove", "json-127.0.0.1", env=env, check=True)
    assert "removed destination json-127.0.0.1" in removed.stdout
    for result in (added, listed, removed):
        assert SECRET not in result.stdout + result.stderr


def test_warnings_go_to_stderr_and_errors_are_located_without_secrets(initialised: dict[str, str]) -> None:
    env = initialised
    config_dir = Path(env["MONITOR_CONFIG"])
    (config_dir / "secrets.toml").write_text(f'HOOK_PASSWORD = "{SECRET}"\n')
    (config_dir / "secrets.toml").chmod(0o644)
    monitor("alerts", "add", "json://u:${HOOK_PASSWORD}@127.0.0.1/hook", "--name", "hook", env=env, check=True)
    listed = monitor("alerts", "destinations", env=env, check=True)
    assert "warning: " in listed.stderr and "secrets.toml is readable by group/others" in listed.stderr
    (config_dir / "alerts.toml").write_text(
        f'[[destination]]\nname = "bad"\nurl = "mailto://user:{SECRET}@127.0.0.1"\n')
    broken = monitor("alerts", "destinations", env=env)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert f"{config_dir / 'alerts.toml'}:3" in broken.stderr and "destination[0].url" in broken.stderr
    assert SECRET not in broken.stdout + broken.stderr


def test_usage_errors_exit_2(initialised: dict[str, str]) -> None:
    env = initialised
    both = monitor("alerts", "add", "json://127.0.0.1/x", "--digest-every", "6h", "--digest-at", "08:00", env=env)
    assert both.returncode == 2 and "not both" in both.stderr
    empty = monitor("alerts", "add", "-", env=env, input="\n")
    assert empty.returncode == 2 and "no URL on standard input" in empty.stderr
    unknown = monitor("alerts", "remove", "nope", env=env)
    assert unknown.returncode == 2 and "no destination named 'nope'" in unknown.stderr
    assert (Path(env["MONITOR_CONFIG"]) / "alerts.toml").read_text() == SHIPPED


def test_every_command_has_help_with_examples(env: dict[str, str]) -> None:
    for command in ("add", "remove", "destinations"):
        result = monitor("alerts", command, "--help", env=env, check=True)
        assert "Example" in result.stdout and f"monitor alerts {command}" in result.stdout
