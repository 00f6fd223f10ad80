"""The ``Backend`` interface sessions generate through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

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

    @abstractmethod
    async def load(self) -> None:
        """Load the model(s); may take a while."""

    @abstractmethod
    def stream(self, request: GenerateRequest) -> AsyncGenerator[BackendEvent, None]:
        """``TokenChunk``s then one ``StreamEnd``; closing early cancels generation."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the backend; safe to call twice."""
