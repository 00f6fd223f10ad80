"""The one interface requests are generated through, and the events an engine yields.

Every engine speaks the protocol's own event types (``TokenChunk``s then one
``StreamEnd``), so a response is built the same way whether it was served here or by a
worker across the world. An engine that wraps others (failover) adds an event of its
own, so that who serves a stream is part of the stream and not a side channel:
``Failover`` when the stream moves after a failure, ``Decided`` when the route is
settled inside the stream (the router's second look, after the local prefill). Failures
are raised as ``EdgeError`` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from edge_agent.router import Decision, Route
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["Decided", "Engine", "EngineEvent", "Failover", "LinkedWorker"]


@dataclass(frozen=True)
class Failover:
    """The stream failed where it ran and goes on elsewhere: ``to`` serves from now on,
    resuming after the ``after_tokens`` tokens the client already has (0: it had none,
    the request is simply served elsewhere). ``cause`` names the failure's class."""

    to: Route
    after_tokens: int
    cause: str


@dataclass(frozen=True)
class Decided:
    """The route, settled after the stream began (before its first token): the plan
    left it to the router's second look. The serving pipeline accounts it as the plan's
    decision and never hands it to the HTTP layer."""

    decision: Decision


EngineEvent = TokenChunk | StreamEnd | Failover | Decided


@dataclass(frozen=True)
class LinkedWorker:
    """One open link to a cloud worker, as operators see it."""

    worker_id: str
    path: str
    """``direct``, ``turn-udp``, ``turn-tcp``, ``relay`` or ``unknown``."""
    role: str
    """``primary`` (new requests go there) or ``standby`` (warm, for failover)."""


class Engine(ABC):
    """Where a request is served. ``served_by`` is what ``X-Tandem-Served-By`` says."""

    served_by: Route

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Whether the engine can take a request now."""

    @property
    @abstractmethod
    def model(self) -> str:
        """The model name this engine serves (shown in ``/v1/models``)."""

    async def available(self, timeout_s: float) -> bool:
        """Whether the engine can take a request now or within ``timeout_s`` (an engine
        that links to others may be between links; one that runs here cannot wait)."""
        return self.ready

    @property
    def path(self) -> str | None:
        """The network path requests take now (``direct``, ``turn-udp``, ``turn-tcp``,
        ``relay``, or ``unknown`` when aiortc would not say); ``None`` for an engine that
        runs here."""
        return None

    def links(self) -> tuple[LinkedWorker, ...]:
        """The cloud workers this engine holds links to now (the status page shows
        them); none for an engine that runs here."""
        return ()

    @abstractmethod
    def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        """Yield ``TokenChunk``s then exactly one ``StreamEnd`` (wrappers: with
        ``Failover``/``Decided`` among them); closing the iterator early cancels
        generation wherever it runs."""
