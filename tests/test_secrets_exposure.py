"""Secrets and exposure: every CLI command and a daemon cycle, with secret-bearing URLs everywhere.

One config folder holds every kind of secret the product accepts: passwords
in apprise URLs (in alerts.toml and apprise.yml), a token from secrets.toml,
one from $CREDENTIALS_DIRECTORY, one from the environment, a Telegram bot
token, a bearer header, and feed credentials in URLs and in a header. Every
command of `monitor --help` runs against it (debug logging on), then the
daemon runs until an alert reaches the webhook and refuses a broken reload.
The secrets must appear in no output, no log line, no database cell, no HTTP
answer and no file outside the config folder; yet the receivers must have
been sent them, so the test cannot pass by never using them.

Nothing leaves loopback: HTTPS_PROXY points at a closed local port, so the
Telegram send fails at the proxy instead of reaching api.telegram.org.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import signal
import socket
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import click
import pytest

from monitor.alert.apprise_send import redact
from monitor.alert.destinations import load_alerts
from monitor.cli import main as cli_main
from monitor.config.listen import LOOPBACK, parse_listen
from monitor.models import Destination
from support.daemon import DaemonProcess, db_rows, wait_until
from support.feeds import Item, rss
from support.feedserver import FeedServer, static
from support.secrets import SecretSet, database_cells, file_mode, isolated_env, listening_addresses, non_loopback_ipv4
from support.sinks import SmtpSink, Webhook, free_port
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor

NOW = datetime.now(UTC)
WATCH = CHINA_DRONES_WATCH
FIRST_STORY = Item("a", "Chinese drone parts reach Russia", summary="Shipments of Chinese drone engines.",
                   published=NOW - timedelta(hours=1), link="https://news.example.org/a")
NEUTRAL_STORY = Item("b", "Weather in Kyiv", published=NOW - timedelta(hours=1))
DAEMON_STORY = Item("c", "Beijing drone engines found in wreckage", published=NOW - timedelta(minutes=5),
                    link="https://news.example.org/c")
SITE = (b'<html><head><link rel="alternate" type="application/rss+xml" href="/private.xml">'
        b'<link rel="alternate" type="application/rss+xml" href="/headered.xml"></head></html>')
URL_ESCAPED = "%40%2F%3A%2B"  # "@/:+" in a password or token, percent-encoded as a URL needs
NOT_RUN = {("demo",): "runs its own sample config for a minute; it never reads this config folder"}

# Feed credentials: the database stores feed URLs without them (they are sent as a header).
FEED_CREDENTIALS = ("feedpass", "brokenfeedpass", "deadfeedpass", "opmlpass")


# --------------------------------------------------------------------------
# the world: servers, a secret-laden config folder, and every command's output
# --------------------------------------------------------------------------


@dataclass
class Output:
    label: str  # the command line: it holds the secrets the user typed, so it is not checked
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
    destinations: tuple[Destination, ...] = ()
    http_listening_on: set[str] = field(default_factory=set)
    http_reachable_at: dict[str, bool] = field(default_factory=dict)
    status_after_refused_reload: str = ""

    @property
    def cfg(self) -> Path:
        return Path(self.env["MONITOR_CONFIG"])

    @property
    def db(self) -> Path:
        return Path(self.env["MONITOR_DB"])

    def cli(self, *args: str, codes: tuple[int, ...] = (0,), input: str | None = None) -> subprocess.CompletedProcess:
        """Run `monitor ARGS`, keep its output, and require one of the exit CODES and no traceback."""
        result = monitor(*args, env=self.env, input=input)
        label = f"monitor {' '.join(args)}"
        self.outputs.append(Output(label, f"{result.stdout}\n{result.stderr}"))
        self.commands_run.add(command_path(args))
        shown = f"$ {label}  (exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        assert result.returncode in codes, shown
        assert "Traceback" not in result.stderr, shown
        return result

    def cli_parallel(self, *calls: tuple) -> list[subprocess.CompletedProcess]:
        """Independent commands at once, each (args...) or (args..., {"codes": ...})."""
        def one(call: tuple) -> subprocess.CompletedProcess:
            options = call[-1] if isinstance(call[-1], dict) else {}
            return self.cli(*(call[:-1] if options else call), **options)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, calls))

    def keep(self, label: str, text: str) -> None:
        self.outputs.append(Output(label, text))

    def output_of(self, label: str) -> str:
        return next(output.text for output in self.outputs if output.label == label)


def command_path(args: tuple[str, ...]) -> tuple[str, ...]:
    """The (group, command) ARGS invoke, global options skipped: ('alerts', 'add')."""
    words = list(args)
    while words and words[0].startswith("--"):
        option = words.pop(0)
        if "=" not in option and option not in ("--help", "--version") and words:
            words.pop(0)
    path: list[str] = []
    command: click.Command | None = cli_main
    while words and isinstance(command, click.Group):
        command = _subcommand(command, words[0])
        if command is not None:
            path.append(words.pop(0))
    return tuple(path)


def _subcommand(group: click.Group, name: str) -> click.Command | None:
    """GROUP's command NAME through click's lookup (the top group loads its commands lazily)."""
    return group.get_command(click.Context(group), name)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)


def _set_setting(path: Path, commented: str, value: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert commented in text, f"{path.name} no longer documents {commented!r}"
    path.write_text(text.replace(commented, value, 1), encoding="utf-8")


def _with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("//", f"//{userinfo}@", 1)


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
    _write_private(credentials / "CRED", secrets.new("credential", URL_ESCAPED))
    world = World(root, env, secrets, feeds, smtp, webhook)
    try:
        _discover_commands(world)
        _configure(world)
        _alert_destinations(world)
        _commands_before_any_poll(world)
        _poll_and_read_back(world)
        world.destinations = load_alerts(world.cfg, world.env).destinations
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
    names = _listed(world.cli("--help").stdout)
    groups = [name for name in names if isinstance(_subcommand(cli_main, name), click.Group)]
    world.listed_commands = {(name,) for name in names if name not in groups}
    for group, result in zip(groups, world.cli_parallel(*((group, "--help") for group in groups)), strict=False):
        world.listed_commands |= {(group, name) for name in _listed(result.stdout)}


def _listed(help_text: str) -> list[str]:
    """The command names under "Commands:" in a click help page."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def _configure(world: World) -> None:
    """Debug logging, health alerts after one failure, and five feeds, four with credentials."""
    secrets, cfg, server = world.secrets, world.cfg, world.feeds
    world.cli("init", str(cfg), "--no-feeds")
    monitor_toml = cfg / "monitor.toml"
    monitor_toml.write_text('log_level = "debug"\n' + monitor_toml.read_text(encoding="utf-8"), encoding="utf-8")
    (cfg / "watch.toml").write_text(WATCH, encoding="utf-8")
    _write_private(cfg / "secrets.toml", f'TOKEN = "{secrets.new("token")}"\n')
    _set_setting(cfg / "alerts.toml", '# health_failures = 5', 'health_failures = 1')
    _set_setting(cfg / "alerts.toml", '# send_timeout = "30s"', 'send_timeout = "10s"')

    story_feed = rss([FIRST_STORY, NEUTRAL_STORY], title="Private Outlet")
    server.routes["/private.xml"] = static(story_feed)
    server.routes["/headered.xml"] = static(story_feed)
    server.routes["/broken.xml"] = static(b"server trouble", content_type="text/plain", status=500)
    server.routes["/site/"] = static(SITE, content_type="text/html; charset=utf-8")
    world.cli("feeds", "add", _with_userinfo(server.url("/private.xml"), f"reader:{secrets.new('feedpass')}"),
              "--name", "private", "--interval", "1s", "--language", "en")
    world.cli("feeds", "add", _with_userinfo(server.url("/broken.xml"), f"reader:{secrets.new('brokenfeedpass')}"),
              "--name", "broken", "--no-discover")
    dead = f"http://reader:{secrets.new('deadfeedpass')}@127.0.0.1:{free_port()}/feed.xml"
    world.cli("feeds", "add", dead, "--name", "dead", "--force")  # refuses connections: added only forced
    world.cli("feeds", "add", _with_userinfo(server.url("/site/"), f"reader:{secrets.new('sitepass')}"),
              codes=(2,))  # the page lists two feeds: neither --first nor --all
    basic = base64.b64encode(f"reader:{secrets.new('headerpass')}".encode()).decode()
    secrets.also("headerpass", basic)
    with (cfg / "feeds.toml").open("a", encoding="utf-8") as stream:
        stream.write(f'\n[[feed]]\nname = "headered"\nurl = "{server.url("/headered.xml")}"\n'
                     f'headers = {{ Authorization = "Basic {basic}" }}\n')


def _alert_destinations(world: World) -> None:
    """Nine destinations, four through `alerts add` (two from stdin); refused adds holding a secret."""
    secrets, hook, cfg = world.secrets, f"127.0.0.1:{world.webhook.port}", world.cfg
    add = ("alerts", "add")
    mail = (f"mailto://alerts:{secrets.new('smtppass')}@127.0.0.1:{world.smtp.port}"
            "?from=monitor@example.com&to=desk@example.com")
    world.cli(*add, mail, "--name", "mail")
    world.cli(*add, "-", "--name", "hook", "--tag", "drones", "--tag", "admin",
              input=f"json://hook:{secrets.new('hookpass', URL_ESCAPED)}@{hook}/hook\n")
    world.cli(*add, f"json://{hook}/" + "${TOKEN}", "--name", "token")
    world.cli(*add, "-", input=f"tgram://123456789:{secrets.new('tgrambot')}/4242\n")
    with (cfg / "alerts.toml").open("a", encoding="utf-8") as stream:
        for name, url in (("cred", f"json://cred:${{CRED}}@{hook}/cred"),
                          ("env", f"json://{hook}/env?+X-Api-Key=${{ENVSECRET}}"),
                          ("bearer", f"json://{hook}/bearer?+Authorization=Bearer%20"
                                     f"{secrets.new('bearer', URL_ESCAPED)}"),
                          ("spare", f"json://spare:{secrets.new('sparepass')}@{hook}/spare")):
            stream.write(f'\n[[destination]]\nname = "{name}"\nurl = "{url}"\n')
    _write_private(cfg / "apprise.yml", f"urls:\n  - json://yaml:{secrets.new('yamlpass')}@{hook}/yaml\n")

    refused = secrets.new("refused")
    world.cli_parallel(
        (*add, f"mailto://alerts:{refused}@127.0.0.1", {"codes": (2,)}),  # apprise: no usable sender
        (*add, f"jsn://alerts:{refused}@127.0.0.1/x", "--name", "hook", {"codes": (2,)}),
        (*add, "-", {"codes": (2,), "input": f"json://alerts:{refused}@{hook}/" + "${UNDEFINED}\n"}),
    )


def _commands_before_any_poll(world: World) -> None:
    inputs, out = world.root / "inputs", world.root / "out"
    inputs.mkdir()
    out.mkdir()
    (inputs / "saved.xml").write_bytes(rss([FIRST_STORY]))
    (inputs / "labelled.jsonl").write_text(json.dumps({"id": 1, "title": FIRST_STORY.title, "summary": "",
                                                       "lang": "en", "label": True}) + "\n", encoding="utf-8")
    opml = _with_userinfo(world.feeds.url("/imported.xml"), f"reader:{world.secrets.new('opmlpass')}")
    (inputs / "subscriptions.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        f'<outline type="rss" text="imported" xmlUrl="{opml}"/></body></opml>', encoding="utf-8")
    world.cli_parallel(
        ("config", "check"), ("feeds", "export"), ("alerts", "destinations", "--json"),
        ("rules", "list"), ("rules", "check"), ("rules", "test", FIRST_STORY.title, "--json"),
        ("terms", "list"), ("systemd-unit",), ("status", "--json", {"codes": (1,)}),
        ("match", str(inputs / "saved.xml"), "--json"), ("rules", "eval", str(inputs / "labelled.jsonl")),
        ("feeds", "import", str(inputs / "subscriptions.opml"), "--dry-run", "--json"),
        ("--log-format", "json", "alerts", "test", {"codes": (1,)}),  # mail and Telegram fail
        ("config", "push", {"codes": (2,)}), ("worker", {"codes": (2,)}),  # a cluster's: not on SQLite
    )
    world.cli("feeds", "export", "-o", str(out / "feeds.opml"))
    world.cli("feeds", "import", str(inputs / "subscriptions.opml"))
    world.cli("web", "passwd", input=world.secrets.new("webpassword") + "\n")


def _poll_and_read_back(world: World) -> None:
    """One poll (alerts sent, some failing), a retry, and every read-back command."""
    # Mail and Telegram fail: `run --once` and `alerts retry` say so with exit code 1.
    world.cli("--log-level", "debug", "run", "--once", codes=(1,))
    story = db_rows(world.db, "SELECT id FROM entries WHERE guid = 'a'")[0][0]
    world.cli("alerts", "retry", "--all", codes=(1,))
    world.cli("--log-level", "debug", "--log-format", "json", "run", "--once", codes=(0, 1))
    world.cli_parallel(
        ("alerts", "list"), ("alerts", "list", "--failed", "--json"), ("stories", "--json"),
        ("search", "drone", "--json"), ("matches", "--json"), ("show", str(story)),
        ("show", str(story), "--json"), ("report", "--html", str(world.root / "out" / "report.html")),
        ("status", {"codes": (1,)}), ("feeds", "list"), ("feeds", "list", "--json"), ("alerts", "destinations"),
        ("rules", "backtest"),
    )
    world.cli("feeds", "pause", "broken")
    world.cli("feeds", "resume", "broken")
    world.cli("feeds", "reset", "broken")
    world.cli("mute", str(story), "--reason", "checked by hand")
    world.cli("unmute", str(story))
    world.cli("mute", str(story), "--reason", "checked by hand")


def _daemon_cycle(world: World) -> None:
    """`monitor run --http :PORT` until an alert reaches the webhook; then a reload it must refuse."""
    world.feeds.routes["/private.xml"] = static(rss([FIRST_STORY, NEUTRAL_STORY, DAEMON_STORY]))
    before, port = len(world.webhook.posts), free_port()
    alerts_toml = world.cfg / "alerts.toml"
    good_alerts = alerts_toml.read_text(encoding="utf-8")
    daemon = DaemonProcess(world.env, "--http", f":{port}").start()
    try:
        assert wait_until(lambda: any(DAEMON_STORY.title in json.dumps(post)
                                      for post in world.webhook.posts[before:]), 20), daemon.output()
        assert wait_until(lambda: listening_addresses(port), 10), daemon.output()
        world.http_listening_on = listening_addresses(port)
        for address in filter(None, (LOOPBACK, non_loopback_ipv4())):
            world.http_reachable_at[address] = _connects(address, port)
        for path in ("/healthz", "/metrics", "/matches.atom"):
            world.keep(f"GET {path}", _get(f"http://127.0.0.1:{port}{path}"))
        world.cli("alerts", "retry", "--all")  # the running daemon sends them

        broken_line = f'url = "json://a:{world.secrets.new("reloadpass")}@127.0.0.1:1/x" oops'
        _write_private(alerts_toml, f'{good_alerts}\n[[destination]]\nname = "late"\n{broken_line}\n')
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in daemon.output(), 10), daemon.output()
        # debug lines (a 304 re-poll of the 1 s feed) are among what must hold no secret
        assert wait_until(lambda: "level=debug" in daemon.output(), 10), daemon.output()
        world.status_after_refused_reload = world.cli("status", "--json", codes=(1,)).stdout
    finally:
        code = daemon.stop()
        daemon.ensure_dead()
        world.keep("monitor run (daemon)", daemon.output())
        alerts_toml.write_text(good_alerts, encoding="utf-8")
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
    except urllib.error.HTTPError as error:  # /healthz answers 503 while unhealthy
        return error.read().decode("utf-8", "replace")


def _edits_and_removals(world: World) -> None:
    """Edits of alerts.toml and feeds.toml, and of watch.toml alongside (different files)."""
    def config_edits() -> None:
        world.cli("alerts", "remove", "spare")
        world.cli("alerts", "remove", "nowhere", codes=(2,))
        world.cli("feeds", "remove", "imported")

    def watch_edits() -> None:
        world.cli("terms", "add", "china", "PRC")
        world.cli("terms", "exclude", "china", "China Open")
        world.cli("terms", "remove", "china", "PRC")
        world.cli("rules", "disable", "china_drones")
        world.cli("rules", "enable", "china_drones")

    _together(config_edits, watch_edits)


def _together(*steps: Callable[[], None]) -> None:
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        for future in [pool.submit(step) for step in steps]:
            future.result()


BROKEN_CONFIGS = (  # (file, text with {NAME} for a fresh secret); each in a folder of its own
    ("feeds.toml", '[[feed]]\nname = "x"\nurl = "http://reader:{badsyntaxfeed}@127.0.0.1:1/x" oops\n'),
    ("feeds.toml", '[[feed]]\nname = "x"\nurl = "ftp://reader:{badschemefeed}@127.0.0.1:1/x"\n'
                   '[[feed]]\nname = "y"\nurl = "http://reader:{badintervalfeed}@127.0.0.1:1/y"\n'
                   'interval = "soon"\n'
                   'headers = {{ Authorization = 42, X-Token = "{badheader}", "bad header" = "v" }}\n'),
    ("alerts.toml", '[[destination]]\nname = "x"\nurl = "json://a:{badsyntaxalert}@127.0.0.1:1/x" oops\n'),
    ("alerts.toml", '[[destination]]\nname = "x"\nurl = "json://a:{badmodealert}@127.0.0.1:1/x"\n'
                    'mode = "digest"\n'
                    '[[destination]]\nname = "y"\nurl = "mailto://a:{badmailalert}@127.0.0.1"\n'
                    '[[destination]]\nname = "z"\nurl = "json://a:{undefinedalert}@127.0.0.1:1/${{UNDEFINED}}"\n'),
)


def _broken_configs(world: World) -> None:
    """Syntax and value errors on lines that hold secrets: each located error must mask them."""
    def check(number: int, file: str, template: str) -> None:
        folder = world.root / f"cfg-broken-{number}"
        world.cli("init", str(folder), "--no-feeds")
        names = re.findall(r"(?<!\{)\{([a-z]+)\}", template)
        (folder / file).write_text(template.format(**{name: world.secrets.new(name) for name in names}),
                                   encoding="utf-8")
        world.cli("--config", str(folder), "config", "check", codes=(2,))

    _together(*(functools.partial(check, number, *case) for number, case in enumerate(BROKEN_CONFIGS)))


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------


def test_every_listed_command_was_run(world):
    missing = world.listed_commands - world.commands_run - set(NOT_RUN)
    assert not missing, f"commands in --help this test never runs: {sorted(missing)}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_secrets_were_really_sent(world):
    """The receivers got every secret: the checks below pass because secrets are masked, not unused."""
    cores, escaped = world.secrets.cores, unquote(URL_ESCAPED)
    auth = set(filter(None, world.webhook.auth))
    assert {_basic("hook", cores["hookpass"] + escaped), _basic("cred", cores["credential"] + escaped),
            _basic("yaml", cores["yamlpass"]), f"Bearer {cores['bearer']}{escaped}"} <= auth, auth
    feed_auth = {request.path: request.headers.get("Authorization") for request in world.feeds.requests}
    assert feed_auth["/private.xml"] == _basic("reader", cores["feedpass"])
    assert feed_auth["/site/"] == _basic("reader", cores["sitepass"])
    assert feed_auth["/headered.xml"] == _basic("reader", cores["headerpass"])


def test_no_secret_in_any_output_or_log(world):
    leaks = {output.label: found for output in world.outputs if (found := world.secrets.found_in(output.text))}
    detail = "\n\n".join(
        f"{label}: {found}\n" + "\n".join(line for line in world.output_of(label).splitlines()
                                          if world.secrets.found_in(line))
        for label, found in leaks.items())
    assert not leaks, f"secrets shown by {len(leaks)} command(s):\n{detail}"


def test_the_risky_paths_were_really_taken(world):
    """Debug logs, send failures, fetch errors and a refused reload: where a secret would slip out."""
    daemon = world.output_of("monitor run (daemon)")
    assert "level=debug" in daemon and "reload refused" in daemon
    assert '"level": "debug"' in world.output_of("monitor --log-level debug --log-format json run --once")
    sent = world.output_of("monitor --log-format json alerts test")
    assert "mail: failed" in sent and "tgram: failed" in sent and "bearer: ok" in sent
    assert "could not fetch" in next(output.text for output in world.outputs if "--name dead" in output.label)
    assert "alerts.toml" in json.loads(world.status_after_refused_reload)["config_error"]


def test_send_errors_are_redacted_for_every_destination(world):
    """An apprise error quoting a URL or a bare token loses every secret of the destination."""
    checked = set()
    for destination in world.destinations:
        for label, core in world.secrets.cores.items():
            if core not in unquote(destination.url):
                continue
            checked.add(label)
            secret = core + unquote(URL_ESCAPED) if core + URL_ESCAPED in destination.url else core
            for message in (f"POST {destination.url} failed", f"HTTP 401 for {unquote(destination.url)}",
                            f"token {secret} rejected", f"Authorization: Bearer {secret}"):
                assert core not in redact(message, destination), (destination.name, message)
    assert {"smtppass", "hookpass", "token", "tgrambot", "credential", "envsecret", "bearer", "yamlpass"} <= checked


def _database_leaks(world: World) -> dict[str, set[str]]:
    leaks: dict[str, set[str]] = {}
    for table, column, value in database_cells(world.db):
        found = (world.secrets.found_in_bytes(value) if isinstance(value, bytes)
                 else world.secrets.found_in(str(value)))
        if found:
            leaks.setdefault(f"{table}.{column}", set()).update(found)
    return leaks


def test_no_secret_in_the_database(world):
    leaks = {place: labels for place, labels in _database_leaks(world).items() if labels}
    assert not leaks, f"secrets stored in the database: {leaks}"


def test_feed_credentials_stay_out_of_the_database(world):
    leaks = {place: labels & set(FEED_CREDENTIALS) for place, labels in _database_leaks(world).items()}
    assert not {place: labels for place, labels in leaks.items() if labels}


def test_no_secret_in_files_outside_the_config_folders(world):
    """The database files (raw pages too), the lock, the report, the export, HOME: none holds a secret."""
    private = {world.cfg, world.root / "credentials", world.root / "inputs"}
    private |= set(world.root.glob("cfg-broken-*"))
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
    assert world.http_reachable_at[LOOPBACK]
    elsewhere = [address for address, reachable in world.http_reachable_at.items()
                 if reachable and address != LOOPBACK]
    assert not elsewhere, f"the endpoint answers on {elsewhere}"


def test_syntax_error_context_hides_feed_header_secrets(env, tmp_path):
    cfg, secrets = Path(env["MONITOR_CONFIG"]), SecretSet()
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    (cfg / "feeds.toml").write_text(
        f'[[feed]]\nname = "x"\nurl = "http://127.0.0.1:1/x"\n'
        f'headers = {{ Authorization = "Bearer {secrets.new("headertoken")}" }} oops\n', encoding="utf-8")
    result = monitor("config", "check", env=env)
    assert result.returncode == 2 and "feeds.toml:4" in result.stderr
    assert not secrets.found_in(result.stdout + result.stderr), result.stderr


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


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: file_mode(path) for path in folder.iterdir()}


def test_config_folder_from_init_is_private(env, open_umask):
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    assert file_mode(cfg) == 0o700
    modes = _modes(cfg)
    assert modes and modes == dict.fromkeys(modes, 0o600)


def test_files_holding_credentials_are_created_private_and_stay_private(env, tmp_path, open_umask):
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    (cfg / "alerts.toml").unlink()
    monitor("alerts", "add", "-", "--name", "one", env=env, check=True,
            input="json://user:pass1234@127.0.0.1:9/one\n")
    assert file_mode(cfg / "alerts.toml") == 0o600
    monitor("alerts", "add", "json://127.0.0.1:9/two", "--name", "two", env=env, check=True)
    monitor("alerts", "remove", "one", env=env, check=True)
    monitor("feeds", "add", "http://reader:feedpass1234@127.0.0.1:9/feed", "--no-discover", env=env, check=True)
    modes = _modes(cfg)
    assert modes == dict.fromkeys(modes, 0o600), "edited files, and no temporary file left behind"
    assert set(modes) == {"alerts.toml", "feeds.toml", "monitor.toml", "watch.toml"}
    export = tmp_path / "with-credentials.opml"
    monitor("feeds", "export", "--keep-credentials", "-o", str(export), env=env, check=True)
    assert "feedpass1234" in export.read_text(encoding="utf-8") and file_mode(export) == 0o600


def test_state_folder_database_and_its_companions_are_private(env, feed_server, open_umask):
    cfg, db = Path(env["MONITOR_CONFIG"]), Path(env["MONITOR_DB"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    feed_server.routes["/feed"] = static(rss([NEUTRAL_STORY]))
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "local", "--no-discover", env=env, check=True)
    daemon = DaemonProcess(env).start()
    companions = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock")]
    try:
        assert wait_until(lambda: db_rows(db, "SELECT 1 FROM entries") and all(p.exists() for p in companions),
                          20), daemon.output()
        state_mode, modes = file_mode(db.parent), _modes(db.parent)
    finally:
        assert daemon.stop() == 0, daemon.output()
        daemon.ensure_dead()
    assert state_mode == 0o700
    assert set(modes) >= {db.name, *(path.name for path in companions)}
    assert modes == dict.fromkeys(modes, 0o600)


def test_default_xdg_folders_are_created_private(env, open_umask):
    del env["MONITOR_CONFIG"], env["MONITOR_DB"]
    home = Path(env["HOME"])
    monitor("config", "check", env=env, check=True)
    monitor("alerts", "retry", "--all", env=env, check=True)  # opens the database for writing
    config_dir, data_dir = home / ".config" / "monitor", home / ".local" / "share" / "monitor"
    assert file_mode(config_dir) == 0o700 and file_mode(data_dir) == 0o700
    for folder in (config_dir, data_dir):
        modes = _modes(folder)
        assert modes == dict.fromkeys(modes, 0o600), folder
    assert stat.S_ISREG((data_dir / "monitor.db").stat().st_mode)

