"""A hostile worker: a peer with a valid worker token that registers with real signaling,
answers offers over real aiortc, and then sends whatever frames its script says.

It is the attacker of issue 13's item 9, not a part users run: the edge it talks to is
the real one (its pool, peers and serving pipeline, over the real link code).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr

from edge_agent.engines.remote import RemoteEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig, StreamBounds
from link import DataChannelLink, Link, LinkClosed, SignalingClient, accept_offer
from shared.messages import (
    Answer,
    Cancel,
    GenerateRequest,
    Message,
    Offer,
    Ping,
    Pong,
    Register,
    Role,
)
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.rtc import FRAME, LOOPBACK
from tests.support.wait import eventually

Script = Callable[[Link, GenerateRequest], Awaitable[None]]
"""What the hostile worker sends for one request."""


@dataclass
class HostileWorker:
    """Answers every offer and runs ``script`` for every request."""

    script: Script
    links: list[DataChannelLink] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            with contextlib.suppress(LinkClosed):
                await coro

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def on_message(self, client: SignalingClient, message: Message) -> None:
        if isinstance(message, Offer):
            self.spawn(self.answer(client, message))

    async def answer(self, client: SignalingClient, offer: Offer) -> None:
        answer = await accept_offer(
            offer.sdp, client.ice_servers, max_frame_bytes=FRAME, policy=LOOPBACK
        )
        await client.send(Answer(session_id=offer.session_id, sdp=answer.sdp, model="hostile"))
        link = await answer.wait_link(20)
        self.links.append(link)
        while True:
            message = await link.recv()
            if isinstance(message, Ping):
                await link.send(Pong(nonce=message.nonce))
            elif isinstance(message, GenerateRequest):
                self.spawn(self.script(link, message))
            elif isinstance(message, Cancel):
                self.cancels.append(message.request_id)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(link.aclose() for link in self.links), return_exceptions=True)


@asynccontextmanager
async def hostile_cloud(
    script: Script, bounds: StreamBounds | None = None
) -> AsyncIterator[tuple[RemoteEngine, HostileWorker]]:
    """A real signaling app, the hostile worker registered with it, and the edge's cloud
    engine (a real pool) holding a warm link to it."""
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        hostile = HostileWorker(script)
        worker = SignalingClient(
            url,
            token(Role.WORKER, "hostile"),
            on_message=lambda message: hostile.on_message(worker, message),
            hello=lambda: (Register(models=("hostile",), capacity=4),),
            reconnect_max_s=1,
        )
        edge = SignalingClient(url, token(Role.EDGE, "edge-victim"), reconnect_max_s=1)
        config = PoolConfig(
            connect_timeout_s=10,
            policy=LOOPBACK,
            warm_standby=False,
            relay_first=False,  # this worker speaks WebRTC only
            reconnect_min_s=0.1,
            bounds=bounds or StreamBounds(),
        )
        engine = RemoteEngine(PeerPool(edge, EdgeMetrics(), config), model="")
        worker.start()
        await worker.wait_connected(10)
        edge.start()
        engine.start()
        try:
            await eventually(lambda: engine.ready, what="a warm link to the hostile worker")
            yield engine, hostile
        finally:
            await engine.aclose()
            await edge.aclose()
            await hostile.aclose()
            await worker.aclose()
