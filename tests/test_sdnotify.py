"""sd_notify against real AF_UNIX datagram sockets standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.runtime.sdnotify import Notifier


def _receiver(address: bytes | str) -> socket.socket:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.settimeout(5)
    return receiver


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    receiver = _receiver(str(path))
    yield receiver, str(path)
    receiver.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"monitor-test-{uuid.uuid4().hex}"
    receiver = _receiver(b"\0" + name.encode())
    yield receiver, "@" + name
    receiver.close()


@pytest.fixture
def notifier(path_socket) -> Iterator[Notifier]:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path_socket[1]})
    yield notifier
    notifier.close()


def test_ready_with_ukrainian_and_chinese_status_is_one_exact_utf8_datagram(path_socket, notifier):
    receiver, _ = path_socket
    status = "опитування 5 стрічок · 监控 5 个源"
    assert notifier.ready(status) is True
    assert receiver.recv(4096) == b"READY=1\nSTATUS=" + status.encode("utf-8")


def test_fields_keep_their_order_and_numbers_become_text(path_socket, notifier):
    receiver, _ = path_socket
    assert notifier.send(STATUS="polling 5 feeds", READY=1, ERRNO=0)
    assert receiver.recv(4096) == b"STATUS=polling 5 feeds\nREADY=1\nERRNO=0"


def test_abstract_socket_address(abstract_socket):
    receiver, address = abstract_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    try:
        assert notifier.enabled
        assert notifier.status("Київ: 3 нові") is True
        assert receiver.recv(4096) == "STATUS=Київ: 3 нові".encode()
    finally:
        notifier.close()


def test_each_helper_sends_its_own_field(path_socket, notifier):
    receiver, _ = path_socket
    assert notifier.ready() and notifier.stopping() and notifier.watchdog() and notifier.status("ok")
    assert [receiver.recv(4096) for _ in range(4)] == [b"READY=1", b"STOPPING=1", b"WATCHDOG=1", b"STATUS=ok"]


def test_reloading_carries_the_monotonic_clock_in_microseconds(path_socket, notifier):
    receiver, _ = path_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = receiver.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC" and value.isdigit()
    assert before <= int(value) <= after


def test_a_newline_in_a_value_cannot_inject_another_field(path_socket, notifier):
    receiver, _ = path_socket
    assert notifier.status("feed down\nREADY=1\r\nmore")
    assert receiver.recv(4096) == b"STATUS=feed down READY=1 more"


def test_without_notify_socket_it_is_a_silent_no_op():
    notifier = Notifier.from_env({})
    assert notifier.enabled is False
    assert notifier.ready("x") is False
    assert notifier.watchdog_interval() is None


def test_a_missing_socket_returns_false_logs_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.DEBUG, logger="monitor.runtime.sdnotify"):
        assert notifier.enabled is True
        assert notifier.ready("starting") is False
        assert notifier.watchdog() is False
    failures = [r for r in caplog.records if "sd_notify_failed" in r.getMessage()]
    assert len(failures) == 1
    notifier.close()


def test_the_socket_is_not_inherited_by_child_processes(path_socket, notifier):
    notifier.watchdog()
    assert notifier._socket is not None
    assert os.get_inheritable(notifier._socket.fileno()) is False


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "60000000"}, 60.0),
    ({"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": str(os.getpid())}, 2.5),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "main"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(path_socket, env, expected):
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path_socket[1], **env})
    assert notifier.watchdog_interval() == expected
