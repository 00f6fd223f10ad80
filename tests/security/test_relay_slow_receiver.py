"""Issue 13, item 10: one slow relay receiver must not stall anyone else.

The attack: an edge opens a relayed session and stops reading its socket. Before this
change, signaling forwarded each relayed frame by awaiting the receiver's socket from
the *sender's* read loop; once the silent edge's TCP buffers filled, signaling stopped
reading the worker altogether, and every other session of that worker (other edges),
its load reports and its offers stalled with it, until the worker's heartbeat gave up
on signaling and dropped the whole connection (seen: LinkClosed after ~20 s, the
worker reconnecting). Now each direction of each session
has its own bounded buffer (``--relay-buffer-bytes``): the slow session is dropped when
its buffer is full, and nothing else notices.
"""

from __future__ import annotations

import asyncio

import pytest

from link import LinkClosed, SignalingClient
from link.relay_crypto import RelayHandshake
from shared.messages import (
    Ping,
    Pong,
    RelayAccept,
    RelayClose,
    RelayOpen,
    Role,
    SignalError,
    TokenChunk,
)
from tests.security.support import metric, raw_peer, signaling
from tests.support.apps import token
from tests.support.edge import wait_for_workers
from tests.support.relay import relay_worker

BUFFER_BYTES = 65536
FLOOD_LIMIT_BYTES = 512 * 1024 * 1024
"""Far beyond any socket buffers: a worker that could send this much never got stopped."""


async def test_a_receiver_that_stops_reading_loses_only_its_own_session() -> None:
    async with signaling(
        relay_buffer_bytes=BUFFER_BYTES,
        relay_bytes_per_s=1_000_000_000,  # pacing is not under test: only the buffer stops it
        heartbeat_s=3600,  # the silent edge answers no pings; it must not be dropped for that
    ) as port:
        relaying = relay_worker(f"ws://127.0.0.1:{port}/v1/signal", max_frame_bytes=16384)
        worker, accepted = relaying.client, relaying.accepted
        busy_edge = SignalingClient(
            f"ws://127.0.0.1:{port}/v1/signal", token(Role.EDGE, "edge-busy")
        )
        worker.start()
        busy_edge.start()
        try:
            await worker.wait_connected(30)
            await busy_edge.wait_connected(30)
            await wait_for_workers(f"ws://127.0.0.1:{port}/v1/signal", 1)
            async with raw_peer(port, Role.EDGE, "edge-silent") as silent:
                key = RelayHandshake("slow", Role.EDGE).public_key
                await silent.send(RelayOpen(session_id="slow", model="m", key=key))
                assert isinstance(await silent.recv_until(RelayAccept), RelayAccept)
                to_silent = await asyncio.wait_for(accepted.get(), 30)
                busy, _ = await busy_edge.relays.open(
                    "busy", model="m", timeout_s=30, max_frame_bytes=16384
                )
                to_busy = await asyncio.wait_for(accepted.get(), 30)

                # The silent edge reads nothing from here on; the worker streams to it.
                chunk = TokenChunk(request_id="r", text="x" * 12000, n_tokens=1)
                sent = 0
                with pytest.raises(LinkClosed):
                    async with asyncio.timeout(120):  # bounds a hang (the bug), no more
                        while sent < FLOOD_LIMIT_BYTES:
                            await to_silent.send(chunk)
                            sent += len(chunk.text)
                assert sent < FLOOD_LIMIT_BYTES, "signaling never dropped the slow session"
                # Dropped by signaling, not by the worker's connection dying under it.
                assert worker.connected
                workers = '{role="worker"}'
                assert await metric(port, "tandem_signaling_connections_total", workers) == 1
                assert await metric(port, "tandem_signaling_relay_overflows_total") == 1

                # The worker's other session, on the same worker socket, still flows.
                await busy.send(Ping(nonce=7))
                assert await asyncio.wait_for(to_busy.recv(), 30) == Ping(nonce=7)
                await to_busy.send(Pong(nonce=7))
                assert await asyncio.wait_for(busy.recv(), 30) == Pong(nonce=7)
                assert worker.connected

                # The silent edge lost that session, not its connection: reading again,
                # it gets what was already on its way, then the reason.
                close = await silent.recv_until(RelayClose)
                assert isinstance(close, RelayClose) and close.session_id == "slow"
                assert "reads too slowly" in close.reason
                await silent.send(Ping(nonce=1))  # still served: refused, as ever, by name
                refusal = await silent.recv_until(SignalError)
                assert isinstance(refusal, SignalError) and "ping" in refusal.message
                assert not silent.ws.closed
        finally:
            await busy_edge.aclose()
            await worker.aclose()
