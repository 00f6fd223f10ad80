"""``Peer``: one worker over one link, many request streams multiplexed on it.

The peer owns the link's reader: frames are routed by request id to per-stream queues;
a stream that ends early (client gone) sends ``Cancel`` so the worker stops generating.
When the link dies every open stream fails with ``TransportClosed`` at once, instead of
waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    ) -> None:
        self.worker_id = worker_id
        self.model = model
        self._link = link
        self._first_token_timeout_s = first_token_timeout_s
        self._token_timeout_s = token_timeout_s
        self._streams: dict[str, asyncio.Queue[_Item]] = {}
        self._closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def path(self) -> PathKind:
        return self._link.path

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name=f"peer-{self.worker_id}"
        )

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _read(self) -> None:
        try:
            while True:
                message = await self._link.recv()
                if isinstance(message, TokenChunk | StreamEnd | StreamFailed):
                    queue = self._streams.get(message.request_id)
                    if queue is not None:
                        queue.put_nowait(message)
                    # else: a late frame for a stream we cancelled; harmless
                elif isinstance(message, Ping):
                    await self._link.send(Pong(nonce=message.nonce))
                elif isinstance(message, Pong):
                    pass
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
            if not finished and not self._link.closed:
                with contextlib.suppress(LinkClosed):
                    await self._link.send(Cancel(request_id=rid))

    async def aclose(self) -> None:
        await self._link.aclose()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
