"""``daemon.service`` on a real aiohttp app in this loop, notifying a real socket:
READY waits for both the listening sockets and the process's own condition, STATUS
follows changes, and a datagram the kernel dropped (a full queue) is sent again."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web

from daemon.notify import Notifier
from daemon.service import ServiceNotifications
from tests.support.notify import NotifySocket
from tests.support.wait import eventually


async def test_ready_needs_listening_and_the_condition(tmp_path: Path) -> None:
    systemd = NotifySocket(tmp_path / "notify")
    ready = [False]
    state = {"status": "loading"}
    service = ServiceNotifications(
        is_ready=lambda: ready[0],
        status=lambda: state["status"],
        environ=systemd.env(),
        tick_s=0.01,
    )
    app = web.Application()
    service.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        received: list[list[str]] = []

        async def next_message() -> list[str]:
            message = await asyncio.to_thread(systemd.receive, 30)
            assert message is not None
            received.append(message)
            return message

        assert await next_message() == ["STATUS=loading"]
        ready[0] = True  # ready, but nothing listens yet: still no READY
        state["status"] = "loaded"
        assert await next_message() == ["STATUS=loaded"]
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        service.listening()  # what web.run_app's print= hook does once sites listen
        state["status"] = "serving"
        while (message := await next_message()) != ["READY=1", "STATUS=serving"]:
            assert "READY=1" not in message and message == ["STATUS=serving"], received
        state["status"] = "serving, busy"
        assert await next_message() == ["STATUS=serving, busy"]
    finally:
        await runner.cleanup()
        systemd.close()
    assert not any("READY=1" in m for m in received[:-2]), received


async def test_a_dropped_status_is_sent_again(tmp_path: Path) -> None:
    """A socket nobody reads: its queue fills, sends fail (EAGAIN); once it drains, the
    status that could not go out arrives."""
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.setblocking(False)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    state = {"status": "one"}
    notifier = Notifier(str(path))
    service = ServiceNotifications(
        is_ready=lambda: False, status=lambda: state["status"], notifier=notifier, tick_s=0.01
    )
    app = web.Application()
    service.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    try:

        def drain() -> list[bytes]:
            got = []
            while True:
                try:
                    got.append(server.recv(4096))
                except BlockingIOError:
                    return got

        await eventually(lambda: b"STATUS=one" in drain(), what="the first status")
        while True:  # fill the queue
            try:
                filler.sendto(b"X=1", str(path))
            except BlockingIOError:
                break
        state["status"] = "two"
        await eventually(lambda: not notifier.status("probe"), what="a full queue")
        seen: list[bytes] = []

        def retried() -> bool:
            seen.extend(drain())
            return b"STATUS=two" in seen

        await eventually(retried, what="the status dropped while the queue was full")
    finally:
        await runner.cleanup()
        server.close()
        filler.close()
