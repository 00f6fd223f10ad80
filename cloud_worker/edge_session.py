"""``EdgeSession``: one edge peer's link on this worker, many concurrent streams over it.

Frames in: ``GenerateRequest`` starts a stream (a task of its own), ``Cancel`` stops one,
``Ping`` is answered. Frames out: the backend's ``TokenChunk``s and one ``StreamEnd`` or
``StreamFailed`` per stream, through an ``Outbox`` that coalesces a stream's chunks
while the link has not drained (never the first token on an idle link).
A peer that sends something it must not gets its link closed; other sessions carry on.
Streams count against the edge's share of the worker (``shares.py``), across its links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import aclosing

from cloud_worker.backends import Backend
from cloud_worker.errors import BackendUnavailable, Draining
from cloud_worker.outbox import Outbox
from cloud_worker.shares import EdgeShares
from cloud_worker.stream_log import StreamStats
from inference import ContextTooLong, InferenceError, ModelLoadError, RunnerOverloaded
from link import Link, LinkClosed
from shared.messages import Cancel, Drain, ErrorCode, GenerateRequest, Ping, Pong, StreamFailed

__all__ = ["EdgeSession"]

log = logging.getLogger(__name__)


def failure_for(exc: BaseException) -> tuple[ErrorCode, str, bool]:
    """Map a generation error to (wire code, client-safe message, retryable)."""
    if isinstance(exc, ContextTooLong):
        return ErrorCode.CONTEXT_TOO_LONG, str(exc), False
    if isinstance(exc, Draining):
        return ErrorCode.DRAINING, "worker is draining", True
    if isinstance(exc, BackendUnavailable | RunnerOverloaded | ModelLoadError):
        return ErrorCode.OVERLOADED, str(exc), True
    if isinstance(exc, InferenceError):
        return ErrorCode.BAD_REQUEST, str(exc), False
    return ErrorCode.BACKEND_ERROR, "generation failed on the worker", True


class EdgeSession:
    """Serves one edge peer until its link closes."""

    def __init__(
        self,
        link: Link,
        backend: Backend,
        *,
        peer_id: str,
        max_streams: int,
        peer_timeout_s: float = 15.0,
        on_load_change: Callable[[], None] = lambda: None,
        on_result: Callable[[str], None] = lambda _: None,
        shares: EdgeShares | None = None,
    ) -> None:
        """``on_result`` hears how each request ended: ``completed``, ``cancelled``,
        ``handed-back`` (draining), ``failed`` or ``refused`` (the worker metric's label).
        ``shares``: the worker's per-edge stream counts (``None``: this session's own
        ``max_streams`` only)."""
        self.peer_id = peer_id
        self._shares = shares or EdgeShares(max_streams=max_streams, max_links=1)
        self._link = link
        self._outbox = Outbox(link)
        self._backend = backend
        self._max_streams = max_streams
        self._peer_timeout_s = peer_timeout_s
        self._on_load_change = on_load_change
        self._on_result = on_result
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._stats: dict[str, StreamStats] = {}
        self._draining = False

    @property
    def merged_chunks(self) -> int:
        """Token chunks merged into another before sending (the link was backed up)."""
        return self._outbox.merged

    @property
    def active(self) -> int:
        return len(self._streams)

    async def drain(self, grace_s: float) -> None:
        """Finish what fits in ``grace_s``; hand the rest back as retryable.

        The edge hears ``Drain`` first, so it stops sending here and opens a link to
        another worker while these streams finish.
        """
        self._draining = True
        with contextlib.suppress(LinkClosed):
            await self._link.send(Drain(deadline_s=grace_s))
        running = list(self._streams.values())
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for rid, task in list(self._streams.items()):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._fail(
                rid,
                ErrorCode.DRAINING,
                "the worker is shutting down; retry elsewhere",
                retryable=True,
            )

    async def run(self) -> None:
        """Read frames until the link closes, then cancel what is still running."""
        log.info("session with edge %s open on path %s", self.peer_id, self._link.path.value)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._peer_timeout_s):
                        message = await self._link.recv()
                except LinkClosed:
                    return
                except TimeoutError:  # edges ping every few seconds: this one is gone
                    log.warning(
                        "edge %s silent for %.0f s; closing its session",
                        self.peer_id,
                        self._peer_timeout_s,
                    )
                    return
                if isinstance(message, GenerateRequest):
                    await self._start(message)
                elif isinstance(message, Cancel):
                    task = self._streams.get(message.request_id)
                    if task is not None:
                        task.cancel()
                elif isinstance(message, Ping):
                    await self._link.send(Pong(nonce=message.nonce))
                else:
                    log.warning(
                        "edge %s sent a %s on the data channel; closing",
                        self.peer_id,
                        message.type_tag,
                    )
                    return
        except LinkClosed:
            return
        finally:
            await self.aclose()

    def _ended(self, rid: str, result: str, stats: StreamStats | None = None) -> None:
        """Count and log how one request ended (once per request)."""
        self._on_result(result)
        stats = stats or self._stats.pop(rid, None) or self._new_stats(rid)
        stats.log(result)

    def _new_stats(self, rid: str) -> StreamStats:
        return StreamStats(request_id=rid, edge=self.peer_id, path=self._link.path.value)

    async def _start(self, request: GenerateRequest) -> None:
        rid = request.request_id
        if self._draining:
            self._ended(rid, "refused", self._new_stats(rid))
            await self._fail(rid, ErrorCode.DRAINING, "the worker is draining", retryable=True)
            return
        if rid in self._streams:
            self._ended(rid, "refused", self._new_stats(rid))
            await self._fail(rid, ErrorCode.BAD_REQUEST, "duplicate request id", retryable=False)
            return
        if len(self._streams) >= self._max_streams or not self._shares.take_stream(self.peer_id):
            self._ended(rid, "refused", self._new_stats(rid))
            await self._fail(
                rid,
                ErrorCode.OVERLOADED,
                f"this edge already has {self._shares.streams(self.peer_id)} streams on this "
                "worker, its share",
                retryable=True,
            )
            return
        self._stats[rid] = self._new_stats(rid)
        task = asyncio.get_running_loop().create_task(self._serve(request), name=f"stream-{rid}")
        self._streams[rid] = task
        task.add_done_callback(lambda done: self._finished(rid, done))
        self._on_load_change()

    def _finished(self, rid: str, task: asyncio.Task[None]) -> None:
        if self._streams.pop(rid, None) is not None:
            self._shares.release_stream(self.peer_id)
        if task.cancelled():  # counted here: a task cancelled before it ran counts too
            self._ended(rid, "handed-back" if self._draining else "cancelled")
        self._on_load_change()

    async def _serve(self, request: GenerateRequest) -> None:
        rid = request.request_id
        try:
            async with aclosing(self._backend.stream(request)) as events:
                async for event in events:
                    if (stats := self._stats.get(rid)) is not None:
                        stats.observe(event)
                    await self._outbox.send(rid, event)
            await self._outbox.settle(rid)
        except asyncio.CancelledError:
            self._outbox.discard(rid)
            raise
        except LinkClosed:
            self._ended(rid, "cancelled")
            return
        except Exception as exc:
            code, message, retryable = failure_for(exc)
            if code is ErrorCode.BACKEND_ERROR:
                log.exception("stream %s failed", rid)
            self._ended(rid, "failed" if code is ErrorCode.BACKEND_ERROR else "refused")
            await self._fail(rid, code, message, retryable=retryable)
            return
        self._ended(rid, "completed")

    async def _fail(self, rid: str, code: ErrorCode, message: str, *, retryable: bool) -> None:
        failed = StreamFailed(
            request_id=rid, code=code, message=message[:1000], retryable=retryable
        )
        with contextlib.suppress(LinkClosed):
            await self._outbox.send(rid, failed)  # after the chunks already queued
            await self._outbox.settle(rid)

    async def aclose(self) -> None:
        """Cancel every stream, wait for them, close the link. Safe to call twice."""
        tasks = list(self._streams.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._outbox.aclose()
        await self._link.aclose()
