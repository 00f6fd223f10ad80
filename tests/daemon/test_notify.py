"""``daemon.notify`` against real ``AF_UNIX`` datagram sockets, as systemd binds them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.notify import Notifier, watchdog_interval_s
from tests.support.notify import NotifySocket


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_assignments_arrive_as_one_datagram(tmp_path: Path, abstract: bool) -> None:
    systemd = NotifySocket(tmp_path / "notify", abstract=abstract)
    notifier = Notifier.from_environ(systemd.env())
    try:
        assert notifier.enabled
        assert notifier.send("READY=1", "STATUS=serving")
        assert systemd.receive(5) == ["READY=1", "STATUS=serving"]
        assert notifier.status("two\nlines   and  spaces")
        assert systemd.receive(5) == ["STATUS=two lines and spaces"]
    finally:
        notifier.close()
        systemd.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.send("READY=1")


def test_a_gone_supervisor_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    assert not notifier.send("WATCHDOG=1")
    assert not notifier.send("WATCHDOG=1")  # warned once, still no exception


def test_a_newline_cannot_smuggle_a_second_assignment() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        Notifier("/nonexistent").send("STATUS=ok\nREADY=1")


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "bogus"}) is None
    # inherited from a parent: meant for another process
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
