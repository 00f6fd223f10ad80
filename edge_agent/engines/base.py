"""The one interface the HTTP layer generates through.

Both engines speak the protocol's own event types (``TokenChunk`` then one
``StreamEnd``), so a response is built the same way whether it was served here or by a
worker across the world. Failures are raised as ``EdgeError`` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from contextvars import ContextVar

from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["ON_FAILOVER", "Engine", "EngineEvent"]

EngineEvent = TokenChunk | StreamEnd

ON_FAILOVER: ContextVar[Callable[[str, int], None] | None] = ContextVar(
    "tandem_on_failover", default=None
)
"""Called with the new engine's ``served_by`` and the tokens delivered so far each time a
stream of the current request fails over. The HTTP layer sets it per request (each
aiohttp handler runs in its own context) to report failovers in headers and in the
stream; the engine API stays ``stream(request)``."""


class Engine(ABC):
    """Where a request is served. ``served_by`` is what ``X-Tandem-Served-By`` says."""

    served_by: str

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
        ``relay``); ``None`` for an engine that runs here."""
        return None

    @abstractmethod
    def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        """Yield ``TokenChunk``s then exactly one ``StreamEnd``; closing the iterator early
        cancels generation wherever it runs."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the engine; safe to call twice."""
