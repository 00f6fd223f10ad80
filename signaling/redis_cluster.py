"""``RedisCluster``: signaling instances sharing one Redis (``--redis-url``).

Keys (all under ``--redis-prefix``, default ``tandem``):

- ``P:instance:ID`` — this instance is alive; ``PX`` = ``--redis-presence-ttl-s``.
- ``P:peer:ROLE:PEER`` — the instance a peer is connected to, same TTL.
- ``P:worker:PEER`` and the set ``P:workers`` — the registry (``RedisRegistry``).

Every key with a TTL is refreshed by this instance's heartbeat (a third of the TTL), so
when an instance dies without a word, its peers and workers vanish within one TTL and
may reconnect elsewhere. Messages go over pub/sub, one channel per instance
(``P:inst:ID``): ordered per publisher, at most once — good enough for signaling, whose
peers already retry offers and whose relayed sessions end (``RelayClose``) rather than
lose a frame silently when an instance goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.codec import decode, encode
from shared.messages import Message, Role
from signaling.cluster import Cluster, ClusterInbox
from signaling.registry.redis import RedisRegistry

__all__ = ["RedisCluster"]

logger = logging.getLogger(__name__)

# Delete a key only while it still names us: an instance that lost a peer to another
# must not erase the other's claim.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_DELIVER, _HANDLE, _GONE, _PROBE, _PROBED = "deliver", "handle", "gone", "probe", "probed"
# A probe carrying the newcomer's resume digest: [nonce, digest]. A kind of its own, so
# that a plain probe's payload stays what older instances expect.
_RESUME = "resume"


class RedisCluster(Cluster):
    """Presence keys with TTLs, one pub/sub channel per instance, and a shared registry."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tandem",
        presence_ttl_s: float = 15.0,
        max_frame_bytes: int = 65536,
        instance_id: str | None = None,
    ) -> None:
        self.instance_id = instance_id or secrets.token_hex(6)
        self._url = url
        self._prefix = prefix
        self._ttl_ms = max(1, int(presence_ttl_s * 1000))
        self._max_frame_bytes = max_frame_bytes
        self._redis: aioredis.Redis = aioredis.from_url(url)
        self.registry = RedisRegistry(
            self._redis, prefix=prefix, instance_id=self.instance_id, ttl_ms=self._ttl_ms
        )
        self._claimed: set[tuple[Role, str]] = set()
        self._probes: dict[str, asyncio.Future[bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[None]] = set()
        self._inbox: ClusterInbox | None = None
        self._release = self._redis.register_script(_RELEASE)

    def _peer_key(self, role: Role, peer_id: str) -> str:
        return f"{self._prefix}:peer:{role.value}:{peer_id}"

    def _channel(self, instance: str) -> str:
        return f"{self._prefix}:inst:{instance}"

    async def start(self, inbox: ClusterInbox) -> None:
        """``RedisError`` if Redis cannot be reached: fail at startup, not on a peer."""
        self._inbox = inbox
        await self._redis.ping()
        await self._beat()
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(self.instance_id))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(pubsub), name="cluster-listen"),
            loop.create_task(self._heartbeat(), name="cluster-heartbeat"),
        ]
        logger.info(
            "signaling instance %s joined the cluster on %s (prefix %s)",
            self.instance_id,
            _redacted(self._url),
            self._prefix,
        )

    async def aclose(self) -> None:
        for task in [*self._tasks, *self._side]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._side, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(f"{self._prefix}:instance:{self.instance_id}")
        await self._redis.aclose()

    async def _beat(self) -> None:
        """Refresh this instance's liveness, its peers' presence and its workers."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self._prefix}:instance:{self.instance_id}", b"1", px=self._ttl_ms)
            for role, peer_id in self._claimed:
                pipe.set(self._peer_key(role, peer_id), self.instance_id, px=self._ttl_ms)
            self.registry.refresh(pipe)
            await pipe.execute()

    async def _heartbeat(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                await self._beat()
                if self._inbox is not None:
                    await self._inbox.cluster_sweep()
            except (RedisError, OSError) as exc:
                if not failing:
                    logger.error(
                        "cannot refresh presence in Redis (%s): other instances will treat "
                        "this one's peers as gone",
                        exc.__class__.__name__,
                    )
                failing = True
                continue
            if failing:
                logger.info("Redis reachable again: presence refreshed")
            failing = False

    async def _listen(self, pubsub: Any) -> None:
        backoff = 0.1
        while True:
            try:
                raw = await pubsub.get_message(timeout=None)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                logger.warning(
                    "lost the Redis subscription (%s); retrying in %.1f s",
                    exc.__class__.__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if raw is None or raw.get("type") != "message":
                continue
            try:
                await self._receive(raw["data"])
            except Exception:  # one bad envelope must not stop this instance's inbox
                logger.exception("failed to handle a message from another instance")

    async def _receive(self, data: bytes) -> None:
        kind, origin, role_text, peer_id, payload = msgpack.unpackb(data)
        inbox = self._inbox
        assert inbox is not None
        role = Role(role_text)
        if kind == _PROBED:
            future = self._probes.get(peer_id)  # peer_id carries the probe's nonce
            if future is not None and not future.done():
                future.set_result(bool(payload))
            return
        if kind in (_PROBE, _RESUME):
            nonce, resume = (payload, None) if kind == _PROBE else (payload[0], payload[1])
            resume = resume if isinstance(resume, bytes) else None
            # A ping waits up to the takeover probe time: off the inbox loop.
            task = asyncio.get_running_loop().create_task(
                self._answer_probe(origin, role, peer_id, nonce, resume)
            )
            self._side.add(task)
            task.add_done_callback(self._side.discard)
            return
        if kind == _GONE:
            await inbox.cluster_gone(origin, role, peer_id)
            return
        message = decode(payload, max_frame_bytes=self._max_frame_bytes + 1024)
        if kind == _DELIVER:
            await inbox.cluster_deliver(origin, role, peer_id, message)
        elif kind == _HANDLE:
            await inbox.cluster_handle(origin, role, peer_id, message)

    async def _answer_probe(
        self, origin: str, role: Role, peer_id: str, nonce: bytes, resume: bytes | None
    ) -> None:
        assert self._inbox is not None
        alive = await self._inbox.cluster_probe(role, peer_id, resume)
        await self._publish(origin, _PROBED, role, nonce.decode(), alive)

    async def _publish(
        self, instance: str, kind: str, role: Role, peer_id: str, payload: Any
    ) -> int:
        envelope = msgpack.packb([kind, self.instance_id, role.value, peer_id, payload])
        return int(await self._redis.publish(self._channel(instance), envelope))

    async def holder(self, role: Role, peer_id: str) -> str | None:
        value = await self._redis.get(self._peer_key(role, peer_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def claim(self, role: Role, peer_id: str) -> None:
        self._claimed.add((role, peer_id))
        await self._redis.set(self._peer_key(role, peer_id), self.instance_id, px=self._ttl_ms)

    async def release(self, role: Role, peer_id: str) -> None:
        self._claimed.discard((role, peer_id))
        await self._release(keys=[self._peer_key(role, peer_id)], args=[self.instance_id])

    async def deliver(self, instance: str, role: Role, peer_id: str, msg: Message) -> bool:
        try:
            return await self._publish(instance, _DELIVER, role, peer_id, encode(msg)) > 0
        except (RedisError, OSError):
            return False

    async def forward(self, instance: str, role: Role, peer_id: str, msg: Message) -> bool:
        try:
            return await self._publish(instance, _HANDLE, role, peer_id, encode(msg)) > 0
        except (RedisError, OSError):
            return False

    async def gone(self, instance: str, role: Role, peer_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._publish(instance, _GONE, role, peer_id, None)

    async def probe(
        self,
        instance: str,
        role: Role,
        peer_id: str,
        timeout_s: float,
        resume: bytes | None = None,
    ) -> bool:
        nonce = secrets.token_hex(8)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._probes[nonce] = future
        kind, payload = (
            (_PROBE, nonce.encode()) if resume is None else (_RESUME, [nonce.encode(), resume])
        )
        try:
            heard = await self._publish(instance, kind, role, peer_id, payload)
            if heard == 0:
                return False  # that instance is not listening: it is gone
            async with asyncio.timeout(timeout_s + 1.0):
                return await future
        except (TimeoutError, RedisError, OSError):
            return False
        finally:
            self._probes.pop(nonce, None)

    async def count_auth_failure(self, source: str, window_s: float) -> int:
        """A fixed window per source: close enough to the local sliding one, and one
        round trip (``INCR`` + ``PEXPIRE`` in a pipeline)."""
        key = f"{self._prefix}:authfail:{source}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(window_s * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)


def _redacted(url: str) -> str:
    """The URL without a password (``redis://:secret@host`` must not reach the logs)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
