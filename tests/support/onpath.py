"""An on-path attacker between a peer and signaling: a TCP proxy that sees every byte.

It stands where a network observer, a TLS-terminating proxy or signaling's own operator
stands: it records what crosses in each direction (``to_server``, ``to_client``), and,
on a plaintext WebSocket, may rewrite the frames signaling sends to the peer
(``tamper``: one payload in, the payloads to send instead out). ``strand`` plays a
vanished client address: the connections open then carry nothing more either way, and
signaling's side stays open (as it does for a peer whose address is gone) while what it
still sends is recorded in ``stranded``. Nothing of Tandem's is replaced: the peer and
signaling are the real ones, talking through it.

``OnPathProxy`` runs in the caller's event loop; ``threaded_proxy`` runs one in a
thread of its own, for tests that block their loop (subprocess stacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

__all__ = ["OnPathProxy", "Tamper", "close_code", "on_path", "threaded_proxy"]

Tamper = Callable[[bytes], list[bytes]]
"""One server-to-client WebSocket payload in; the payloads to forward instead out."""


class _FrameRewriter:
    """Splits the server-to-client byte stream of a plaintext WebSocket into frames
    (after the HTTP upgrade response) and re-encodes each through ``tamper``."""

    def __init__(self, tamper: Tamper) -> None:
        self._tamper = tamper
        self._buffer = b""
        self._upgraded = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = b""
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return out
            out, self._buffer = self._buffer[: end + 4], self._buffer[end + 4 :]
            self._upgraded = True
        while (frame := self._next_frame()) is not None:
            first, payload = frame
            if first & 0x0F != 0x2:  # not a binary frame: pass it on as it was
                out += _frame(first, payload)
                continue
            for replacement in self._tamper(payload):
                out += _frame(first, replacement)
        return out

    def _next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        assert not second & 0x80, "server frames are never masked"
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,), offset = struct.unpack(">H", buf[2:4]), 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,), offset = struct.unpack(">Q", buf[2:10]), 10
        if len(buf) < offset + length:
            return None
        self._buffer = buf[offset + length :]
        return first, buf[offset : offset + length]


def _frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 2**16:
        header = bytes((first, 126)) + struct.pack(">H", size)
    else:
        header = bytes((first, 127)) + struct.pack(">Q", size)
    return header + payload


class OnPathProxy:
    """Forwards each connection to 127.0.0.1:``upstream_port``, recording both ways."""

    def __init__(self, upstream_port: int, *, tamper: Tamper | None = None) -> None:
        self._upstream_port = upstream_port
        self._tamper = tamper
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.stranded = bytearray()
        """What signaling sent on stranded connections (never delivered)."""
        self._open: list[asyncio.Event] = []  # per open connection: set once stranded
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def strand(self) -> None:
        """The client's address vanished: see the module docstring."""
        for stranded in self._open:
            stranded.set()

    def stop_listening(self) -> None:
        """New connections are refused from now on; the open ones stay as they are."""
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        rewrite = _FrameRewriter(self._tamper).feed if self._tamper else None
        stranded = asyncio.Event()
        self._open.append(stranded)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer, self.to_server, None, stranded)),
            asyncio.ensure_future(
                self._pump(up_reader, writer, self.to_client, rewrite, stranded, self.stranded)
            ),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if stranded.is_set():  # the client left; signaling's side lingers, unanswered
                await pumps[1]
        finally:
            self._open.remove(stranded)
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for w in (writer, up_writer):
                w.close()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: bytearray,
        rewrite: Callable[[bytes], bytes] | None,
        stranded: asyncio.Event,
        stranded_record: bytearray | None = None,
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if stranded.is_set():
                    if stranded_record is not None:
                        stranded_record += data
                    continue
                record += data
                writer.write(rewrite(data) if rewrite else data)
                await writer.drain()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@asynccontextmanager
async def on_path(
    upstream_port: int, *, tamper: Tamper | None = None
) -> AsyncIterator[OnPathProxy]:
    proxy = OnPathProxy(upstream_port, tamper=tamper)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()


@contextmanager
def threaded_proxy(upstream_port: int) -> Iterator[OnPathProxy]:
    """A recording ``OnPathProxy`` in a thread of its own (its own event loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="on-path-proxy", daemon=True)
    thread.start()
    proxy = OnPathProxy(upstream_port)
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(30)
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def close_code(server_bytes: bytes | bytearray) -> int | None:
    """The code of the close frame among server-to-client WebSocket frames (unmasked),
    e.g. what signaling sent on a stranded connection; ``None`` if there is none yet."""
    data = bytes(server_bytes)
    while len(data) >= 2:
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            (length,), offset = struct.unpack(">H", data[2:4]), 4
        elif length == 127:
            (length,), offset = struct.unpack(">Q", data[2:10]), 10
        if opcode == 0x8 and length >= 2:
            return int(struct.unpack(">H", data[offset : offset + 2])[0])
        data = data[offset + length :]
    return None
