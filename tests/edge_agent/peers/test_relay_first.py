"""Relay first, upgrade in the background: the pool's first link is the relay through
signaling, requests are served on it at once, and when a WebRTC path opens new requests
take it while the streams already on the relay finish there, none lost or repeated.

Real signaling and worker apps (in this loop), the real relay, real WebRTC on loopback,
the real model. WebRTC is held back by the network, not by a clock: worker-z offers no
ICE candidates at all, so only the relay reaches it; worker-b, started later, is
reachable over WebRTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from edge_agent.engines.base import EngineEvent
from edge_agent.peers import Peer
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.apps import serving
from tests.support.edge import LOOPBACK_POOL, edge_pool, linked_worker, worker_app
from tests.support.wait import eventually

RELAY_FIRST = replace(LOOPBACK_POOL, relay_first=True, upgrade_interval_s=0.5, warm_standby=False)
STREAMS = 20
MAX_TOKENS = 16


def counting(rid: str, start: int) -> GenerateRequest:
    """A request whose answer the client can check: numbers, each one more than the last."""
    return GenerateRequest(
        request_id=rid,
        messages=(
            ChatMessage(role="user", content="Count from 57 to 63, separated by commas."),
            ChatMessage(role="assistant", content="57, 58, 59, 60, 61, 62, 63"),
            ChatMessage(
                role="user", content=f"Count from {start} to {start + 40}, separated by commas."
            ),
        ),
        params=SamplingParams(max_tokens=MAX_TOKENS, temperature=0),
    )


@dataclass
class Received:
    """One stream as the client saw it."""

    chunks: list[TokenChunk] = field(default_factory=list)
    ends: list[StreamEnd] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)


async def collect(events: AsyncIterator[EngineEvent], into: Received) -> Received:
    async for event in events:
        if isinstance(event, TokenChunk):
            into.chunks.append(event)
        elif isinstance(event, StreamEnd):
            into.ends.append(event)
    return into


async def answer(peer: Peer, request: GenerateRequest) -> Received:
    return await collect(peer.stream(request), Received())


async def test_first_answer_on_the_relay_then_new_requests_move_to_webrtc() -> None:
    async with (
        edge_pool(RELAY_FIRST) as edge,
        linked_worker(edge.pool, edge.url, "worker-z", ice_host_addresses="none"),
    ):
        relayed = await edge.pool.acquire(timeout_s=1)
        first = await answer(relayed, counting("first", 300))
        # The first answer came over the relay: no WebRTC path to worker-z exists.
        assert relayed.path.value == "relay"
        assert first.ends and first.ends[0].completion_tokens == MAX_TOKENS
        assert edge.pool.peer is relayed  # upgrade attempts failed; the relay stays
        async with serving(worker_app(edge.url, "worker-b")):
            await eventually(
                lambda: (p := edge.pool.peer) is not None and p.path.value == "direct",
                timeout_s=60,
                what="the pool upgraded to a direct link",
            )
            upgraded = await edge.pool.acquire(timeout_s=1)
            later = await answer(upgraded, counting("later", 300))
            assert later.text == first.text  # same model, same prompt, temperature 0
            await asyncio.wait_for(relayed.wait_closed(), 30)  # the idle relay retired
            text = edge.metrics.render().decode()
            assert 'tandem_edge_cloud_connects_total{result="relay"} 1.0' in text
            assert 'tandem_edge_cloud_connects_total{result="direct"} 1.0' in text


async def test_twenty_streams_in_flight_finish_on_the_relay_while_the_path_upgrades() -> None:
    async with edge_pool(RELAY_FIRST) as edge:
        async with linked_worker(
            edge.pool,
            edge.url,
            "worker-z",
            ice_host_addresses="none",
            max_queue=STREAMS,
            edge_share=1.0,
        ):
            relayed = await edge.pool.acquire(timeout_s=1)
            assert relayed.path.value == "relay"
            received = [Received() for _ in range(STREAMS)]
            streams = [relayed.stream(counting(f"s{i}", 100 + 50 * i)) for i in range(STREAMS)]
            # Every stream is sent, and the first has begun, before the better path exists.
            first_event = await anext(streams[0])
            assert isinstance(first_event, TokenChunk)
            received[0].chunks.append(first_event)
            readers = [
                asyncio.ensure_future(anext(s)) for s in streams[1:]
            ]  # each sends its request
            await eventually(
                lambda: all(relayed.inbox(f"s{i}") is not None for i in range(STREAMS)),
                what="all 20 streams open on the relay",
            )
            async with serving(worker_app(edge.url, "worker-b", max_queue=STREAMS, edge_share=1.0)):
                await eventually(
                    lambda: (p := edge.pool.peer) is not None and p.path.value == "direct",
                    timeout_s=60,
                    what="the pool upgraded to a direct link",
                )
                # The streams are still open on the relay, which is not retired under them.
                assert not relayed.closed
                assert all(relayed.inbox(f"s{i}") is not None for i in range(1, STREAMS))
                upgraded = await edge.pool.acquire(timeout_s=1)
                for i, reader in enumerate(readers, start=1):
                    event = await reader
                    if isinstance(event, TokenChunk):
                        received[i].chunks.append(event)
                    else:
                        assert isinstance(event, StreamEnd)
                        received[i].ends.append(event)
                await asyncio.gather(
                    *(collect(s, r) for s, r in zip(streams, received, strict=True))
                )
                await asyncio.wait_for(relayed.wait_closed(), 30)  # retired once they ended
                # Each stream, checked end to end against the same prompt on the new path.
                references = await asyncio.gather(
                    *(answer(upgraded, counting(f"ref{i}", 100 + 50 * i)) for i in range(STREAMS))
                )
        for i, (got, ref) in enumerate(zip(received, references, strict=True)):
            assert len(got.ends) == 1, f"stream {i} ended {len(got.ends)} times"
            tokens = sum(c.n_tokens for c in got.chunks)
            assert tokens == got.ends[0].completion_tokens == MAX_TOKENS, f"stream {i}"
            assert got.text == ref.text, f"stream {i} lost or repeated text"
