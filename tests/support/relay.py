"""A worker's side of relayed sessions, as the worker program runs it: a real
``SignalingClient`` that registers and accepts every ``RelayOpen`` (the keyed, encrypted
accept of ``link``), handing each session's link to the test."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from link import RelayLink, SignalingClient
from shared.messages import Message, Register, RelayOpen, Role
from tests.support.apps import token


@dataclass
class RelayWorker:
    """The client, and the links of the sessions it accepted, in order."""

    client: SignalingClient
    accepted: asyncio.Queue[RelayLink] = field(default_factory=asyncio.Queue)


def relay_worker(
    url: str,
    *,
    peer_id: str = "worker-1",
    max_frame_bytes: int = 4096,
    capacity: int = 4,
    ca_file: Path | None = None,
) -> RelayWorker:
    """A worker client for signaling at ``url`` (not started), serving model ``m``."""
    worker: RelayWorker

    async def on_message(message: Message) -> None:
        if isinstance(message, RelayOpen):
            link = await worker.client.relays.accept(
                message, model="m", max_frame_bytes=max_frame_bytes
            )
            worker.accepted.put_nowait(link)

    client = SignalingClient(
        url,
        token(Role.WORKER, peer_id),
        on_message=on_message,
        hello=lambda: (Register(models=("m",), capacity=capacity),),
        ca_file=ca_file,
    )
    worker = RelayWorker(client)
    return worker
