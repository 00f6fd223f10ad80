"""``Peer``: one worker over one link, many request streams multiplexed on it.

The peer owns the link's reader: frames are routed by request id to per-stream inboxes;
a stream that ends early (client gone) sends ``Cancel`` so the worker stops generating.
When the link dies every open stream fails with ``TransportClosed`` at once, instead of
waiting for a timeout. Each inbox checks what the worker sends against the stream's
bounds (``guard.py``) before keeping it; a worker that breaks them loses its link.

Its lifecycle is one ``PeerState``: ``OPEN`` → ``DRAINING`` (the worker said it is going
away) → ``CLOSED``, or ``OPEN`` → ``CLOSED``; ``_set_state`` is the only place it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from enum import StrEnum

from edge_agent.engines.base import EngineEvent
from edge_agent.errors import (
    ContextTooLong,
    EdgeError,
    GenerationFailed,
    NoPeerAvailable,
    RequestInvalid,
    TransportClosed,
)
from edge_agent.peers.guard import ProtocolViolation, StreamBounds, StreamGuard
from link import Link, LinkClosed, PathKind
from shared.errors import FrameTooLarge
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

__all__ = ["Peer", "PeerState", "StreamInbox"]

log = logging.getLogger(__name__)

_Item = TokenChunk | StreamEnd | StreamFailed | None  # None: the link closed


class PeerState(StrEnum):
    """Where a peer is in its life; it only ever moves forward."""

    OPEN = "open"
    """New requests may use it."""
    DRAINING = "draining"
    """The worker is going away: streams already on it finish, new ones go elsewhere."""
    CLOSED = "closed"
    """The link is gone; every stream still open has failed."""


_ORDER = {PeerState.OPEN: 0, PeerState.DRAINING: 1, PeerState.CLOSED: 2}


class StreamInbox:
    """What the worker sent for one stream, waiting for its reader.

    At most ``max_chunks`` ``TokenChunk``s wait here, then the stream's one final item.
    The worker cannot be paused from here (frames of every stream share the link, and the
    link's reader must keep reading pongs), so a chunk arriving when the inbox is full is
    merged into the last one: a slow reader gets fewer, larger chunks, never fewer tokens.
    """

    def __init__(self, max_chunks: int, guard: StreamGuard | None = None) -> None:
        if max_chunks < 1:
            raise ValueError("max_chunks must be at least 1")
        self.max_chunks = max_chunks
        self._guard = guard
        self._items: deque[_Item] = deque()
        self._chunks = 0
        self._ended = False
        self.capped = False
        """The stream reached the edge's own token cap: it ended here, the worker may
        still be generating (its reader cancels it)."""
        self._ready = asyncio.Event()

    @property
    def chunks(self) -> int:
        """Token chunks waiting now (never more than ``max_chunks``)."""
        return self._chunks

    @property
    def ended(self) -> bool:
        """The stream's final item (its end, its failure, or the link's loss) has arrived."""
        return self._ended

    def put(self, item: _Item) -> None:
        """Hand in one item from the link's reader (never waits); ``ProtocolViolation``
        if the worker broke the stream's bounds (nothing of it is kept)."""
        if self._ended:
            return  # nothing follows a stream's end
        if self._guard is not None and item is not None and not self._guard.admit(item):
            self.capped = True
            item = StreamEnd(
                request_id=item.request_id,
                finish_reason="length",
                prompt_tokens=0,  # not known until the worker's end, which will not come
                completion_tokens=self._guard.tokens,
            )
        if not isinstance(item, TokenChunk):
            self._ended = True
            self._items.append(item)
        elif self._chunks < self.max_chunks:
            self._chunks += 1
            self._items.append(item)
        else:  # full: only chunks are queued before the end, so the last one is a chunk
            last = self._items[-1]
            assert isinstance(last, TokenChunk)
            self._items[-1] = TokenChunk(
                request_id=last.request_id,
                text=last.text + item.text,
                n_tokens=last.n_tokens + item.n_tokens,
                logprobs=last.logprobs + item.logprobs,
            )
        self._ready.set()

    async def get(self) -> _Item:
        """The next item, waiting for one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, TokenChunk):
            self._chunks -= 1
        return item


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
        max_queued_chunks: int = 64,
        bounds: StreamBounds | None = None,
    ) -> None:
        if max_queued_chunks < 1:
            raise ValueError("max_queued_chunks must be at least 1")
        self._bounds = bounds or StreamBounds()
        self.worker_id = worker_id
        self.model = model
        self._link = link
        self._first_token_timeout_s = first_token_timeout_s
        self._token_timeout_s = token_timeout_s
        self._max_queued_chunks = max_queued_chunks
        self._streams: dict[str, StreamInbox] = {}
        self._state = PeerState.OPEN
        # Set, then replaced, whenever the state changes or the last stream ends: each
        # waiter re-checks what it waits for.
        self._changed = asyncio.Event()
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_heard = 0.0
        self._heard = asyncio.Event()  # set by the reader on every message (``recheck``)

    @property
    def path(self) -> PathKind:
        return self._link.path

    @property
    def state(self) -> PeerState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is PeerState.CLOSED

    def _set_state(self, state: PeerState) -> None:
        """The one place the state changes: forward only, logged, waiters woken."""
        if _ORDER[state] <= _ORDER[self._state]:
            return
        log.debug("worker %s: %s -> %s", self.worker_id, self._state.value, state.value)
        self._state = state
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, done: Callable[[], bool]) -> None:
        while not done():
            await self._changed.wait()

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

    async def recheck(self, within_s: float, lost: frozenset[str] = frozenset()) -> bool:
        """The network changed under the link (``lost``: the addresses that went away).
        If the link left from one of them it is dead: closed now. Else it is pinged, and
        closed unless the worker says something within ``within_s``. Either way its
        streams fail over at once rather than after ``dead_after_s`` of silence. Whether
        the link is still up."""
        if self.closed:
            return False
        local = self._link.local_address
        if local is not None and local in lost:
            log.warning(
                "link to worker %s left from %s, which is gone; closing it",
                self.worker_id,
                local,
            )
            await self._link.aclose()
            return False
        self._heard.clear()
        try:
            await self._link.send(Ping(nonce=0))
            async with asyncio.timeout(within_s):
                await self._heard.wait()
        except LinkClosed:
            return False
        except TimeoutError:
            log.warning(
                "worker %s silent on path %s since the network changed; closing the link",
                self.worker_id,
                self.path.value,
            )
            await self._link.aclose()
            return False
        return not self.closed

    @property
    def draining(self) -> bool:
        """The worker said it is going away: streams finish here, new ones go elsewhere."""
        return self._state is PeerState.DRAINING

    async def wait_left_open(self, timeout_s: float | None = None) -> PeerState:
        """Until the peer is no longer ``OPEN``, or ``timeout_s`` passes; the state then."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._until(lambda: self._state is not PeerState.OPEN)
        return self._state

    async def wait_idle(self) -> None:
        """Until no stream is open on this peer (or it closed)."""
        await self._until(lambda: self.closed or not self._streams)

    async def wait_closed(self) -> None:
        await self._until(lambda: self.closed)

    def inbox(self, request_id: str) -> StreamInbox | None:
        """The open stream's inbox (to look at: tests, debugging), if that stream is open."""
        return self._streams.get(request_id)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._link.recv()
                self._last_heard = asyncio.get_running_loop().time()
                self._heard.set()
                if isinstance(message, TokenChunk | StreamEnd | StreamFailed):
                    inbox = self._streams.get(message.request_id)
                    if inbox is not None:
                        try:
                            inbox.put(message)
                        except ProtocolViolation as exc:
                            log.warning(
                                "worker %s broke the protocol on stream %s (%s); dropping its link",
                                self.worker_id,
                                message.request_id,
                                exc,
                            )
                            return
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
                    self._set_state(PeerState.DRAINING)
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
            self._set_state(PeerState.CLOSED)
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            for inbox in self._streams.values():
                inbox.put(None)
            await self._link.aclose()

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        """Run ``request`` on this worker; closing the iterator early cancels it there."""
        rid = request.request_id
        if self.closed:
            raise TransportClosed(f"link to worker {self.worker_id} is closed")
        inbox = StreamInbox(self._max_queued_chunks, StreamGuard(request, self._bounds))
        self._streams[rid] = inbox
        finished = False
        try:
            try:
                await self._link.send(request)
            except LinkClosed as exc:
                raise TransportClosed(f"link to worker {self.worker_id} closed") from exc
            except FrameTooLarge as exc:  # a resumed request grown past the link's limit
                finished = True  # never sent: nothing to cancel
                raise GenerationFailed(f"request too large for the link: {exc}") from exc
            timeout = self._first_token_timeout_s
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        item = await inbox.get()
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
                    finished = not inbox.capped  # capped: the worker still generates
                    return
                timeout = self._token_timeout_s
        finally:
            self._streams.pop(rid, None)
            if not self._streams:
                self._wake()  # wait_idle
            if not finished and not self._link.closed:
                with contextlib.suppress(LinkClosed):
                    await self._link.send(Cancel(request_id=rid))

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self._link.aclose()
        tasks = [t for t in (self._reader, self._heartbeat) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
