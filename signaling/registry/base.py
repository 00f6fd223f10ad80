"""The registry interface: the workers signaling knows, with their models and load.

Async throughout because the shared implementation will talk to Redis; values are
frozen so that a caller can never mutate the store behind its back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["Registry", "WorkerInfo"]


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker, as matchmaking sees it.

    ``capacity`` is how many streams the worker runs at once, ``active`` how many it last
    reported running; ``draining`` workers finish what they have and take nothing new.
    """

    peer_id: str
    models: tuple[str, ...]
    capacity: int
    active: int = 0
    draining: bool = False


class Registry(ABC):
    """Store of ``WorkerInfo`` keyed by ``peer_id``."""

    @abstractmethod
    async def add(self, info: WorkerInfo) -> None:
        """Insert ``info``, replacing any worker with the same ``peer_id``."""

    @abstractmethod
    async def update_load(self, peer_id: str, active: int, draining: bool) -> WorkerInfo | None:
        """Record a worker's load; the updated entry, or ``None`` if it never registered."""

    @abstractmethod
    async def remove(self, peer_id: str) -> None:
        """Forget a worker; removing an unknown one is not an error (disconnects race)."""

    @abstractmethod
    async def get(self, peer_id: str) -> WorkerInfo | None:
        """The worker's entry, or ``None``."""

    @abstractmethod
    async def workers(self) -> list[WorkerInfo]:
        """A snapshot of every registered worker, in no particular order."""
