"""Secrets and exposure: every CLI command and a daemon cycle, with secret-bearing URLs everywhere.

One config folder holds every kind of secret the product accepts: passwords
in apprise URLs, a token from secrets.toml, one from $CREDENTIALS_DIRECTORY,
one from the environment, a Telegram bot token, a bearer header, and feed
credentials in a URL and in a header. Every command of `monitor --help` runs
against it (debug logging on), then the daemon runs until an alert reaches
the webhook. The secrets must appear in no output, no log line, no database
cell and no file outside the config folder; yet the receivers must have been
sent them, so the test cannot pass by never using them.

Nothing leaves loopback: HTTPS_PROXY points at a closed local port, so the
Telegram send fails at the proxy instead of reaching api.telegram.org.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import click
import pytest

from monitor.cli import main as cli_main
from monitor.http import LOOPBACK, parse_listen
from support.daemon import DaemonProcess, db_rows, wait_until
from support.feeds import Item, rss
from support.feedserver import FeedServer, static
from support.secrets import (SecretSet, database_cells, file_mode, isolated_env, listening_addresses,
                             non_loopback_ipv4)
from support.sinks import SmtpSink, Webhook, free_port
from test_cli import env, monitor  # noqa: F401  (the env fixture)

NOW = datetime.now(timezone.utc)
WATCH = """
[entity.china]
aliases = ["China", "Chinese", "Beijing"]

[group.drones]
terms = ["drone*"]

[rule.china_drones]
description = "Chinese drones in the war"
query = '@china NEAR/10 #drones'
severity = "warning"
tags = ["drones"]
"""
FIRST_STORY = Item("a", "Chinese drone parts reach Russia", summary="Shipments of Chinese drone engines.",
                   published=NOW - timedelta(hours=1), link="https://news.example.org/a")
NEUTRAL_STORY = Item("b", "Weather in Kyiv", published=NOW - timedelta(hours=1))
DAEMON_STORY = Item("c", "Beijing drone engines found in wreckage", published=NOW - timedelta(minutes=5),
                    link="https://news.example.org/c")
NOT_RUN = {("demo",): "runs its own sample config for a minute; it never reads this config folder"}


# --------------------------------------------------------------------------
# the world: servers, a secret-laden config folder, and every command's output
# --------------------------------------------------------------------------


@dataclass
class Output:
    label: str
    text: str


@dataclass
class World:
    root: Path
    env: dict[str, str]
    secrets: SecretSet
    feeds: FeedServer
    smtp: SmtpSink
    webhook: Webhook
    outputs: list[Output] = field(default_factory=list)
    commands_run: set[tuple[str, ...]] = field(default_factory=set)
    listed_commands: set[tuple[str, ...]] = field(default_factory=set)
    http_port: int = 0
    http_listening_on: set[str] = field(default_factory=set)
    http_reachable_from: dict[str, bool] = field(default_factory=dict)

    @property
    def cfg(self) -> Path:
        return Path(self.env["MONITOR_CONFIG"])

    @property
    def db(self) -> Path:
        return Path(self.env["MONITOR_DB"])

    def cli(self, *args: str, codes: tuple[int, ...] = (0,), input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `monitor ARGS`, keep its output, and require one of the exit CODES and no traceback."""
        result = monitor(*args, env=env or self.env, input=input, timeout=60)
        shown = f"$ monitor {' '.join(args)}  (exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        self.outputs.append(Output(" ".join(args), shown))
        self.commands_run.add(command_path(args))
        assert result.returncode in codes, shown
        assert "Traceback" not in result.stderr, shown
        return result

    def cli_parallel(self, *calls: tuple) -> list[subprocess.CompletedProcess]:
        """Independent read-only commands at once: (args..., ) or (args..., {"codes": ...})."""
        def one(call: tuple) -> subprocess.CompletedProcess:
            options = call[-1] if isinstance(call[-1], dict) else {}
            args = call[:-1] if options else call
            return self.cli(*args, **options)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, calls))

    def keep(self, label: str, text: str) -> None:
        self.outputs.append(Output(label, text))


def command_path(args: tuple[str, ...]) -> tuple[str, ...]:
    """The (group, command) ARGS invoke, global options skipped: ('alerts', 'add')."""
    words = list(args)
    while words and words[0].startswith("--"):
        option = words.pop(0)
        if "=" not in option and option not in ("--help", "--version") and words:
            words.pop(0)
    path: list[str] = []
    command: click.Command = cli_main
    while words and isinstance(command, click.Group) and words[0] in command.commands:
        command = command.commands[words[0]]
        path.append(words.pop(0))
    return tuple(path)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)


def _set_setting(path: Path, commented: str, value: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert commented in text, f"{path.name} no longer documents {commented!r}"
    path.write_text(text.replace(commented, value, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("secrets")
    secrets = SecretSet()
    feeds, smtp, webhook = FeedServer().start(), SmtpSink().start(), Webhook().start()
    env = isolated_env(root)
    credentials = root / "credentials"
    credentials.mkdir(mode=0o700)
    env.update(CREDENTIALS_DIRECTORY=str(credentials), ENVSECRET=secrets.new("envsecret"),
               HTTPS_PROXY=f"http://127.0.0.1:{free_port()}")  # closed: nothing reaches the internet
    _write_private(credentials / "CRED", secrets.new("credential"))
    world = World(root, env, secrets, feeds, smtp, webhook)
    try:
        _discover_commands(world)
        _configure(world)
        _alert_destinations(world)
        _commands_before_any_poll(world)
        _poll_and_read_back(world)
        _daemon_cycle(world)
        _edits_and_removals(world)
        _broken_configs(world)
        yield world
    finally:
        feeds.stop()
        smtp.stop()
        webhook.stop()


def _discover_commands(world: World) -> None:
    """Every command `monitor --help` and each group's --help list: the set this test must cover."""
    top = world.cli("--help").stdout
    names = _listed(top)
    groups = [name for name in names if isinstance(cli_main.commands.get(name), click.Group)]
    world.listed_commands = {(name,) for name in names if name not in groups}
    helps = world.cli_parallel(*((group, "--help") for group in groups))
    for group, result in zip(groups, helps):
        world.listed_commands |= {(group, name) for name in _listed(result.stdout)}


def _listed(help_text: str) -> list[str]:
    """The command names under "Commands:" in a click help page."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def _configure(world: World) -> None:
    """A config folder with debug logging, health alerts after one failure, and three secret feeds."""
    secrets, cfg = world.secrets, world.cfg
    world.cli("init", str(cfg), "--no-feeds")
    monitor_toml = cfg / "monitor.toml"
    monitor_toml.write_text('log_level = "debug"\n' + monitor_toml.read_text(encoding="utf-8"), encoding="utf-8")
    (cfg / "watch.toml").write_text(WATCH, encoding="utf-8")
    _write_private(cfg / "secrets.toml", f'TOKEN = "{secrets.new("token")}"\n')
    _set_setting(cfg / "alerts.toml", '# health_failures = 5', 'health_failures = 1')
    _set_setting(cfg / "alerts.toml", '# send_timeout = "30s"', 'send_timeout = "10s"')

    story_feed = rss([FIRST_STORY, NEUTRAL_STORY], title="Private Outlet")
    for path in ("/private.xml", "/headered.xml"):
        world.feeds.routes[path] = static(story_feed)
    world.feeds.routes["/broken.xml"] = static(b"server trouble", content_type="text/plain", status=500)
    feed_password, broken_password = secrets.new("feedpass"), secrets.new("brokenfeedpass")
    world.cli("feeds", "add", world.feeds.url("/private.xml").replace("//", f"//reader:{feed_password}@", 1),
              "--name", "private", "--interval", "1s", "--language", "en")
    world.cli("feeds", "add", world.feeds.url("/broken.xml").replace("//", f"//reader:{broken_password}@", 1),
              "--name", "broken", "--no-discover")
    header_password = secrets.new("headerpass")
    basic = base64.b64encode(f"reader:{header_password}".encode()).decode()
    secrets.also("headerpass", basic)
    with (cfg / "feeds.toml").open("a", encoding="utf-8") as stream:
        stream.write(f'\n[[feed]]\nname = "headered"\nurl = "{world.feeds.url("/headered.xml")}"\n'
                     f'headers = {{ Authorization = "Basic {basic}" }}\n')


def _alert_destinations(world: World) -> None:
    """Seven destinations through `alerts add`, some from stdin; and refused adds that name a secret."""
    secrets, hook = world.secrets, f"127.0.0.1:{world.webhook.port}"
    add = ("alerts", "add")
    mail = (f"mailto://alerts:{secrets.new('smtppass')}@127.0.0.1:{world.smtp.port}"
            "?from=monitor@example.com&to=desk@example.com")
    world.cli(*add, mail, "--name", "mail")
    world.cli(*add, "-", "--name", "hook", "--tag", "drones", "--tag", "admin",
              input=f"json://hook:{secrets.new('hookpass')}@{hook}/hook\n")
    world.cli(*add, f"json://{hook}/" + "${TOKEN}", "--name", "token")
    world.cli(*add, f"json://cred:${{CRED}}@{hook}/cred", "--name", "cred")
    world.cli(*add, f"json://{hook}/env?+X-Api-Key=${{ENVSECRET}}", "--name", "env")
    world.cli(*add, "-", input=f"tgram://123456789:{secrets.new('tgrambot')}/4242\n")
    world.cli(*add, "-", "--name", "bearer",
              input=f"json://{hook}/bearer?+Authorization=Bearer%20{secrets.new('bearer')}\n")

    refused = secrets.new("refused")
    world.cli(*add, f"mailto://alerts:{refused}@127.0.0.1", codes=(2,))  # apprise: no usable sender
    world.cli(*add, f"jsn://alerts:{refused}@127.0.0.1/x", codes=(2,))
    world.cli(*add, f"json://alerts:{refused}@{hook}/x", "--name", "hook", codes=(2,))
    world.cli(*add, f"json://alerts:{refused}@{hook}/x", "--digest-every", "soon", codes=(2,))
    world.cli(*add, "-", codes=(2,), input=f"json://alerts:{refused}@{hook}/" + "${UNDEFINED}\n")


def _commands_before_any_poll(world: World) -> None:
    inputs = world.root / "inputs"
    inputs.mkdir()
    (inputs / "saved.xml").write_bytes(rss([FIRST_STORY]))
    (inputs / "subscriptions.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        f'<outline type="rss" text="imported" xmlUrl="http://reader:{world.secrets.new("opmlpass")}'
        f'@127.0.0.1:{world.feeds.port}/imported.xml"/></body></opml>', encoding="utf-8")
    world.cli_parallel(
        ("config", "check"), ("feeds", "list"), ("feeds", "list", "--json"), ("feeds", "export"),
        ("alerts", "destinations"), ("alerts", "destinations", "--json"),
        ("rules", "list"), ("rules", "check"), ("rules", "test", "Chinese drone makers", "--json"),
        ("rules", "test", FIRST_STORY.title), ("terms", "list"), ("terms", "list", "--json"),
        ("systemd-unit",), ("status", "--json", {"codes": (1,)}), ("status", {"codes": (1,)}),
        ("match", str(inputs / "saved.xml"), "--json"),
        ("feeds", "import", str(inputs / "subscriptions.opml"), "--dry-run", "--json"),
        ("--log-format", "json", "alerts", "test", {"codes": (1,)}),  # mail and Telegram fail
    )
    world.cli("feeds", "export", "-o", str(world.root / "out" / "feeds.opml"))
    world.cli("feeds", "import", str(inputs / "subscriptions.opml"))
    world.cli("match", "-", "--format", "jsonl", input=json.dumps({"id": 1, "title": FIRST_STORY.title}) + "\n")
    assert world.webhook.wait_for(5), "the five json:// destinations received the test message"


def _poll_and_read_back(world: World) -> None:
    """One poll (alerts sent, some failing), a retry, and every read-back command."""
    world.cli("--log-level", "debug", "run", "--once")
    story = db_rows(world.db, "SELECT id FROM entries WHERE guid = 'a'")[0][0]
    world.cli("alerts", "retry", "--all")
    world.cli("--log-level", "debug", "--log-format", "json", "run", "--once")
    report = world.root / "out" / "report.html"
    world.cli_parallel(
        ("alerts", "list"), ("alerts", "list", "--json"), ("alerts", "list", "--failed", "--json"),
        ("stories",), ("stories", "--json"), ("search", "drone"), ("search", "drone", "--json"),
        ("matches",), ("matches", "--json"), ("show", str(story)), ("show", str(story), "--json"),
        ("report",), ("report", "--json"), ("report", "--html", str(report)),
        ("status", "--json", {"codes": (1,)}), ("feeds", "list"), ("feeds", "list", "--json"),
        ("rules", "backtest"), ("rules", "backtest", "--json", "--since", "1d"),
    )
    world.cli("feeds", "pause", "broken")
    world.cli("feeds", "resume", "broken")
    world.cli("feeds", "reset", "broken")
    world.cli("mute", str(story), "--reason", "checked by hand")


def _daemon_cycle(world: World) -> None:
    """`monitor run --http :PORT` (debug logging from monitor.toml) until an alert reaches the webhook."""
    world.feeds.routes["/private.xml"] = static(rss([FIRST_STORY, NEUTRAL_STORY, DAEMON_STORY]))
    before = len(world.webhook.posts)
    world.http_port = free_port()
    daemon = DaemonProcess(world.env, "--http", f":{world.http_port}").start()
    try:
        assert wait_until(lambda: any(DAEMON_STORY.title in json.dumps(post)
                                      for post in world.webhook.posts[before:]), 20), daemon.output()
        assert wait_until(lambda: listening_addresses(world.http_port), 10), daemon.output()
        world.http_listening_on = listening_addresses(world.http_port)
        other = non_loopback_ipv4()
        for address in filter(None, (LOOPBACK, other)):
            world.http_reachable_from[address] = _connects(address, world.http_port)
        for path in ("/healthz", "/metrics", "/matches.atom"):
            world.keep(f"GET {path}", _get(f"http://127.0.0.1:{world.http_port}{path}"))
        world.cli("status", "--json")
        world.cli("alerts", "retry", "--all")  # with the daemon running: it sends them
    finally:
        code = daemon.stop() if daemon.proc.poll() is None else daemon.proc.returncode
        daemon.ensure_dead()
        world.keep("monitor run (daemon)", daemon.output())
    assert code == 0, daemon.output()
    world.commands_run.add(("run",))


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:  # /healthz may answer 503 while feeds fail
        return error.read().decode("utf-8", "replace")


def _edits_and_removals(world: World) -> None:
    world.cli("alerts", "remove", "tgram")
    world.cli("alerts", "remove", "nowhere", codes=(2,))
    world.cli("feeds", "remove", "imported")
    world.cli("terms", "add", "china", "PRC")
    world.cli("terms", "exclude", "china", "China Open")
    world.cli("terms", "remove", "china", "PRC")
    world.cli("rules", "disable", "china_drones")
    world.cli("rules", "enable", "china_drones")


def _broken_configs(world: World) -> None:
    """Syntax and value errors on lines that hold secrets: the located error must mask them."""
    secrets = world.secrets
    broken = world.root / "cfg-broken"
    world.cli("init", str(broken), "--no-feeds")
    alerts_line = f'url = "json://alerts:{secrets.new("badalerts")}@127.0.0.1:1/x" oops'
    (broken / "alerts.toml").write_text(f'[[destination]]\nname = "x"\n{alerts_line}\n', encoding="utf-8")
    world.cli("--config", str(broken), "config", "check", codes=(2,))
    world.cli("--config", str(broken), "alerts", "destinations", codes=(2,))
    (broken / "alerts.toml").write_text(
        f'[[destination]]\nname = "x"\nurl = "json://alerts:{secrets.new("badmode")}@127.0.0.1:1/x"\n'
        'mode = "digest"\n', encoding="utf-8")
    world.cli("--config", str(broken), "config", "check", codes=(2,))
    (broken / "alerts.toml").write_text("", encoding="utf-8")
    (broken / "feeds.toml").write_text(
        f'[[feed]]\nname = "x"\nurl = "http://reader:{secrets.new("badfeed")}@127.0.0.1:1/x" oops\n',
        encoding="utf-8")
    world.cli("--config", str(broken), "config", "check", codes=(2,))
    (broken / "feeds.toml").write_text(
        f'[[feed]]\nname = "x"\nurl = "ftp://reader:{secrets.new("badscheme")}@127.0.0.1:1/x"\n',
        encoding="utf-8")
    world.cli("--config", str(broken), "config", "check", codes=(2,))
    (broken / "feeds.toml").write_text(
        f'[[feed]]\nname = "x"\nurl = "http://127.0.0.1:1/x"\nheaders = {{ Authorization = 42, '
        f'X-Token = "{secrets.new("badheader")}", "bad header" = "v" }}\n', encoding="utf-8")
    world.cli("--config", str(broken), "config", "check", codes=(2,))


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------


def test_every_listed_command_was_run(world):
    missing = world.listed_commands - world.commands_run - set(NOT_RUN)
    assert not missing, f"commands in --help this test never runs: {sorted(missing)}"


def test_the_secrets_were_really_sent(world):
    """The receivers got the secrets: a pass below means they were masked, not unused."""
    values = world.secrets.values
    auth = set(filter(None, world.webhook.auth))
    assert "Basic " + base64.b64encode(f"hook:{values['hookpass']}".encode()).decode() in auth
    assert "Basic " + base64.b64encode(f"cred:{values['credential']}".encode()).decode() in auth
    assert f"Bearer {values['bearer']}" in auth
    feed_auth = {request.path: request.headers.get("Authorization") for request in world.feeds.requests}
    assert feed_auth["/private.xml"] == "Basic " + base64.b64encode(
        f"reader:{values['feedpass']}".encode()).decode()
    assert values["headerpass"] not in feed_auth["/headered.xml"]  # sent base64-encoded, as written
    assert feed_auth["/headered.xml"].startswith("Basic ")


def test_no_secret_in_any_output_or_log(world):
    leaks = {output.label: found for output in world.outputs
             if (found := world.secrets.found_in(output.text))}
    detail = "\n\n".join(f"{label}: {found}\n{_around(world, label)}" for label, found in leaks.items())
    assert not leaks, f"secrets shown by {len(leaks)} command(s):\n{detail}"


def _around(world: World, label: str) -> str:
    """The lines of LABEL's output that hold a secret, to say where it leaked."""
    text = next(output.text for output in world.outputs if output.label == label)
    return "\n".join(line for line in text.splitlines() if world.secrets.found_in(line))


def test_debug_output_was_really_checked(world):
    """Debug logging was on: apprise's and httpx's chatter would have reached these outputs."""
    daemon = next(output.text for output in world.outputs if output.label == "monitor run (daemon)")
    assert "level=debug" in daemon
    assert any('"level": "debug"' in output.text for output in world.outputs)


def test_no_secret_in_the_database(world):
    leaks = {}
    for table, column, value in database_cells(world.db):
        if isinstance(value, bytes):
            found = world.secrets.found_in_bytes(value)
        else:
            found = world.secrets.found_in(str(value))
        if found:
            leaks.setdefault(f"{table}.{column}", set()).update(found)
    assert not leaks, f"secrets stored in the database: {leaks}"


def test_no_secret_in_files_outside_the_config_folders(world):
    """The database files (raw pages too), the lock, the report, the export, HOME: none holds a secret."""
    private = {world.cfg, world.root / "cfg-broken", world.root / "credentials", world.root / "inputs"}
    checked, leaks = [], {}
    for path in world.root.rglob("*"):
        if path.is_file() and not any(folder in path.parents for folder in private):
            checked.append(path.name)
            found = world.secrets.found_in_bytes(path.read_bytes())
            if found:
                leaks[str(path.relative_to(world.root))] = found
    assert {"monitor.db", "report.html", "feeds.opml"} <= set(checked)
    assert not leaks, f"secrets written outside the config folder: {leaks}"


def test_http_endpoint_listens_on_loopback_only_by_default(world):
    assert parse_listen(":9108") == (LOOPBACK, 9108)
    assert world.http_listening_on == {LOOPBACK}, world.http_listening_on
    assert world.http_reachable_from[LOOPBACK]
    for address, reachable in world.http_reachable_from.items():
        if address != LOOPBACK:
            assert not reachable, f"/metrics answered on {address}"


# --------------------------------------------------------------------------
# permissions, under a umask that would leave everything world-writable
# --------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000 for the commands run meanwhile: only explicit modes keep files private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_config_folder_from_init_is_private(env, open_umask):  # noqa: F811
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    assert file_mode(cfg) == 0o700
    files = list(cfg.iterdir())
    assert files and {path.name: file_mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_alerts_toml_is_created_private_and_stays_private_after_edits(env, open_umask):  # noqa: F811
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    (cfg / "alerts.toml").unlink()
    monitor("alerts", "add", "-", "--name", "one", env=env, check=True,
            input="json://user:pass1234@127.0.0.1:9/one\n")
    assert file_mode(cfg / "alerts.toml") == 0o600
    monitor("alerts", "add", "json://127.0.0.1:9/two", "--name", "two", env=env, check=True)
    monitor("alerts", "remove", "one", env=env, check=True)
    monitor("feeds", "add", "http://127.0.0.1:9/feed", "--no-discover", env=env, check=True)
    assert file_mode(cfg / "alerts.toml") == 0o600
    assert file_mode(cfg / "feeds.toml") == 0o600
    assert not [path.name for path in cfg.iterdir() if path.name.startswith(".")], "no temporary file left"


def test_state_folder_database_and_its_companions_are_private(env, feed_server, open_umask):  # noqa: F811
    cfg, db = Path(env["MONITOR_CONFIG"]), Path(env["MONITOR_DB"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    feed_server.routes["/feed"] = static(rss([NEUTRAL_STORY]))
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "local", "--no-discover", env=env, check=True)
    daemon = DaemonProcess(env).start()
    companions = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock")]
    try:
        assert wait_until(lambda: db_rows(db, "SELECT 1 FROM entries") and all(p.exists() for p in companions),
                          20), daemon.output()
        modes = {path.name: file_mode(path) for path in [db, *companions]}
        state_mode = file_mode(db.parent)
    finally:
        assert daemon.stop() == 0, daemon.output()
        daemon.ensure_dead()
    assert state_mode == 0o700
    assert modes == {path.name: 0o600 for path in [db, *companions]}


def test_default_xdg_folders_are_created_private(env, open_umask):  # noqa: F811
    del env["MONITOR_CONFIG"], env["MONITOR_DB"]
    home = Path(env["HOME"])
    monitor("config", "check", env=env, check=True)
    monitor("alerts", "retry", "--all", env=env, check=True)  # opens the database for writing
    config_dir, data_dir = home / ".config" / "monitor", home / ".local" / "share" / "monitor"
    assert file_mode(config_dir) == 0o700
    assert {path.name: file_mode(path) for path in config_dir.iterdir()} == \
        {path.name: 0o600 for path in config_dir.iterdir()}
    assert file_mode(data_dir) == 0o700
    assert {path.name: file_mode(path) for path in data_dir.iterdir()} == \
        {path.name: 0o600 for path in data_dir.iterdir()}
    assert stat.S_ISREG((data_dir / "monitor.db").stat().st_mode)
