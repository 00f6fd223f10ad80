"""``Peer``: one worker over one link, many request streams multiplexed on it.

The peer owns the link's reader: frames are routed by request id to per-stream queues;
a stream that ends early (client gone) sends ``Cancel`` so the worker stops generating.
When the link dies every open stream fails with ``TransportClosed`` at once, instead of
waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncGenerator

from edge_agent.engines.base import EngineEvent
from edge_agent.errors import (
    ContextTooLong,
    EdgeError,
    GenerationFailed,
    NoPeerAvailable,
    RequestInvalid,
    TransportClosed,
)
from link import Link, LinkClosed, PathKind
from shared.messages import (
    Cancel,
    Drain,
    ErrorCode,
    GenerateRequest,
    Ping,
    Pong,
    StreamEnd,
    StreamFailed,
    TokenChunk,
)

__all__ = ["Peer"]

log = logging.getLogger(__name__)

_Item = TokenChunk | StreamEnd | StreamFailed | None  # None: the link closed


def error_for(failed: StreamFailed) -> EdgeError:
    """A worker's ``StreamFailed`` as the edge error the HTTP layer understands."""
    if failed.code is ErrorCode.CONTEXT_TOO_LONG:
        return ContextTooLong(failed.message)
    if failed.code is ErrorCode.BAD_REQUEST:
        return RequestInvalid(failed.message)
    if failed.code in (ErrorCode.OVERLOADED, ErrorCode.DRAINING):
        return NoPeerAvailable(f"worker cannot take the request: {failed.message}")
    return GenerationFailed(f"worker failed: {failed.message}")


class Peer:
    """A live link to one worker."""

    def __init__(
        self,
        link: Link,
        *,
        worker_id: str,
        model: str = "",
        first_token_timeout_s: float,
        token_timeout_s: float,
        heartbeat_s: float = 2.0,
        dead_after_s: float = 6.0,
    ) -> None:
        self.worker_id = worker_id
        self.model = model
        self._link = link
        self._first_token_timeout_s = first_token_timeout_s
        self._token_timeout_s = token_timeout_s
        self._streams: dict[str, asyncio.Queue[_Item]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = asyncio.Event()
        self._closed = asyncio.Event()
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_heard = 0.0

    @property
    def path(self) -> PathKind:
        return self._link.path

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        self._reader = loop.create_task(self._read(), name=f"peer-{self.worker_id}")
        self._heartbeat = loop.create_task(self._beat(), name=f"heartbeat-{self.worker_id}")

    async def _beat(self) -> None:
        """Ping every ``heartbeat_s``; a worker silent for ``dead_after_s`` is dead.

        aiortc notices a dead path only after ~27 s of consent-freshness failures; a
        request should not wait that long to move elsewhere.
        """
        loop = asyncio.get_running_loop()
        for nonce in itertools.count():
            await asyncio.sleep(self._heartbeat_s)
            silent_s = loop.time() - self._last_heard
            if silent_s > self._dead_after_s:
                log.warning(
                    "worker %s silent for %.1f s on path %s; closing the link",
                    self.worker_id,
                    silent_s,
                    self.path.value,
                )
                await self._link.aclose()
                return
            try:
                await self._link.send(Ping(nonce=nonce))
            except LinkClosed:
                return

    @property
    def draining(self) -> bool:
        """The worker said it is going away: streams finish here, new ones go elsewhere."""
        return self._draining.is_set()

    async def wait_draining(self) -> None:
        await self._draining.wait()

    async def wait_idle(self) -> None:
        """Until no stream is open on this peer (or it closed)."""
        while not self.closed and not self._idle.is_set():
            await self._idle.wait()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _read(self) -> None:
        try:
            while True:
                message = await self._link.recv()
                self._last_heard = asyncio.get_running_loop().time()
                if isinstance(message, TokenChunk | StreamEnd | StreamFailed):
                    queue = self._streams.get(message.request_id)
                    if queue is not None:
                        queue.put_nowait(message)
                    # else: a late frame for a stream we cancelled; harmless
                elif isinstance(message, Ping):
                    await self._link.send(Pong(nonce=message.nonce))
                elif isinstance(message, Pong):
                    pass
                elif isinstance(message, Drain):
                    log.info(
                        "worker %s is draining (%.0f s left); new requests go elsewhere",
                        self.worker_id,
                        message.deadline_s,
                    )
                    self._draining.set()
                else:
                    log.warning(
                        "worker %s sent a %s on the data channel; dropping it",
                        self.worker_id,
                        message.type_tag,
                    )
                    return
        except LinkClosed:
            return
        finally:
            self._closed.set()
            self._idle.set()
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            for queue in self._streams.values():
                queue.put_nowait(None)
            await self._link.aclose()

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        """Run ``request`` on this worker; closing the iterator early cancels it there."""
        rid = request.request_id
        if self.closed:
            raise TransportClosed(f"link to worker {self.worker_id} is closed")
        queue: asyncio.Queue[_Item] = asyncio.Queue()  # bounded by the request's max_tokens
        self._streams[rid] = queue
        self._idle.clear()
        finished = False
        try:
            try:
                await self._link.send(request)
            except LinkClosed as exc:
                raise TransportClosed(f"link to worker {self.worker_id} closed") from exc
            timeout = self._first_token_timeout_s
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        item = await queue.get()
                except TimeoutError as exc:
                    raise GenerationFailed(
                        f"worker {self.worker_id} stalled for {timeout:.0f} s"
                    ) from exc
                if item is None:
                    raise TransportClosed(f"link to worker {self.worker_id} closed mid-stream")
                if isinstance(item, StreamFailed):
                    finished = True
                    raise error_for(item)
                yield item
                if isinstance(item, StreamEnd):
                    finished = True
                    return
                timeout = self._token_timeout_s
        finally:
            self._streams.pop(rid, None)
            if not self._streams:
                self._idle.set()
            if not finished and not self._link.closed:
                with contextlib.suppress(LinkClosed):
                    await self._link.send(Cancel(request_id=rid))

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self._link.aclose()
        tasks = [t for t in (self._reader, self._heartbeat) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
