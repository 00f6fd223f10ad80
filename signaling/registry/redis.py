"""A registry every signaling instance on one Redis shares (``--redis-url``).

Each worker is one key ``P:worker:PEER`` (JSON: models, capacity, load, and the
instance it is connected to) with a TTL that its instance's heartbeat refreshes, plus
membership of the set ``P:workers``, which readers prune of keys that expired. So a
worker whose instance died stops being matched within one presence TTL, with no
instance having to notice. Only the instance a worker is connected to writes its key.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from signaling.registry.base import Registry, WorkerInfo

__all__ = ["RedisRegistry"]

# Remove a worker only if this instance still holds it: the worker may have
# reconnected to another instance, which re-registered it there.
_REMOVE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['instance'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 0
"""


class RedisRegistry(Registry):
    """``WorkerInfo`` in Redis, written by the worker's own instance, read by all."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str, instance_id: str, ttl_ms: int
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._instance = instance_id
        self._ttl_ms = ttl_ms
        self._local: set[str] = set()  # workers connected here: the heartbeat refreshes them
        self._remove = client.register_script(_REMOVE)

    @property
    def _index(self) -> str:
        return f"{self._prefix}:workers"

    def _key(self, peer_id: str) -> str:
        return f"{self._prefix}:worker:{peer_id}"

    def _dump(self, info: WorkerInfo) -> str:
        return json.dumps(
            {
                "models": list(info.models),
                "capacity": info.capacity,
                "active": info.active,
                "draining": info.draining,
                "instance": self._instance,
            }
        )

    @staticmethod
    def _load(peer_id: str, raw: bytes | str) -> WorkerInfo:
        data = json.loads(raw)
        return WorkerInfo(
            peer_id=peer_id,
            models=tuple(data["models"]),
            capacity=int(data["capacity"]),
            active=int(data["active"]),
            draining=bool(data["draining"]),
        )

    def refresh(self, pipe: Any) -> None:
        """Queue TTL refreshes of this instance's workers on a heartbeat pipeline."""
        for peer_id in self._local:
            pipe.pexpire(self._key(peer_id), self._ttl_ms)
            pipe.sadd(self._index, peer_id)

    async def add(self, info: WorkerInfo) -> None:
        self._local.add(info.peer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(info.peer_id), self._dump(info), px=self._ttl_ms)
            pipe.sadd(self._index, info.peer_id)
            await pipe.execute()

    async def update_load(self, peer_id: str, active: int, draining: bool) -> WorkerInfo | None:
        if peer_id not in self._local:
            return None  # registered here, or not at all (the instance's heartbeat owns it)
        raw = await self._redis.get(self._key(peer_id))
        if raw is None:
            return None
        current = self._load(peer_id, raw)
        updated = WorkerInfo(peer_id, current.models, current.capacity, active, draining)
        await self._redis.set(self._key(peer_id), self._dump(updated), px=self._ttl_ms)
        return updated

    async def remove(self, peer_id: str) -> None:
        self._local.discard(peer_id)
        await self._remove(keys=[self._key(peer_id), self._index], args=[self._instance, peer_id])

    async def get(self, peer_id: str) -> WorkerInfo | None:
        raw = await self._redis.get(self._key(peer_id))
        return self._load(peer_id, raw) if raw is not None else None

    async def workers(self) -> list[WorkerInfo]:
        ids = sorted(_text(m) for m in await self._redis.smembers(self._index))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(i) for i in ids])
        expired = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if expired:  # their instance died (or removed them): prune the index
            await self._redis.srem(self._index, *expired)
        return [self._load(i, raw) for i, raw in zip(ids, raws, strict=True) if raw is not None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
