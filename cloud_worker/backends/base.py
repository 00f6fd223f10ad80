"""The ``Backend`` interface sessions generate through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import Literal

from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["Backend", "BackendEvent"]

BackendEvent = TokenChunk | StreamEnd


class Backend(ABC):
    """Generates for requests; raises ``inference`` / ``WorkerError`` errors, which the
    session maps to ``StreamFailed`` codes."""

    @property
    @abstractmethod
    def models(self) -> tuple[str, ...]:
        """Model names advertised to signaling."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """Streams it generates at once."""

    @property
    @abstractmethod
    def active(self) -> int:
        """Streams generating or waiting now."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Loaded and accepting work."""

    @property
    def state(self) -> Literal["loading", "ready", "down"]:
        """``/healthz``'s word for it: loading, ready, or down (loaded, then lost)."""
        return "ready" if self.ready else "loading"

    def on_health_change(self, listener: Callable[[bool], None]) -> None:  # noqa: B027
        """Call ``listener(ready)`` when the backend goes down or comes back. A model run
        here cannot; an engine across a socket can."""

    @abstractmethod
    async def load(self) -> None:
        """Load the model(s); may take a while."""

    @abstractmethod
    def stream(self, request: GenerateRequest) -> AsyncGenerator[BackendEvent, None]:
        """``TokenChunk``s then one ``StreamEnd``; closing early cancels generation."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the backend; safe to call twice."""
