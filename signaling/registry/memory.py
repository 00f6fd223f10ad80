"""An in-process registry: enough for one signaling server, and for tests."""

from __future__ import annotations

from dataclasses import replace

from signaling.registry.base import Registry, WorkerInfo

__all__ = ["MemoryRegistry"]


class MemoryRegistry(Registry):
    """Workers in a dict; each app gets its own instance, so nothing leaks between apps."""

    def __init__(self) -> None:
        self._workers: dict[str, WorkerInfo] = {}

    async def add(self, info: WorkerInfo) -> None:
        self._workers[info.peer_id] = info

    async def update_load(self, peer_id: str, active: int, draining: bool) -> WorkerInfo | None:
        current = self._workers.get(peer_id)
        if current is None:
            return None
        updated = replace(current, active=active, draining=draining)
        self._workers[peer_id] = updated
        return updated

    async def remove(self, peer_id: str) -> None:
        self._workers.pop(peer_id, None)

    async def get(self, peer_id: str) -> WorkerInfo | None:
        return self._workers.get(peer_id)

    async def workers(self) -> list[WorkerInfo]:
        return list(self._workers.values())
