"""The failed-authentication limit, counted across every instance of a cluster.

``FailureLimiter`` alone counts per instance, so behind a load balancer an attacker
would get ``--auth-max-failures`` tries per instance per window. This one also counts
each failure in Redis (one fixed window per source, ``Cluster.count_auth_failure``);
once the cluster-wide count reaches the limit, this instance refuses that source too,
even if it saw few of the failures itself. The check stays local and synchronous (no
Redis round trip before a valid peer is let in); the count is sent in the background,
so a burst spread over instances may overshoot the limit by a few attempts, never by
a factor of the number of instances.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from signaling.auth_limit import FailureLimiter
from signaling.cluster import Cluster

__all__ = ["SharedFailureLimiter"]

logger = logging.getLogger(__name__)


class SharedFailureLimiter(FailureLimiter):
    """A ``FailureLimiter`` that also counts, and learns, failures cluster-wide."""

    def __init__(
        self, cluster: Cluster, *, max_failures: int, window_s: float, max_sources: int = 10_000
    ) -> None:
        super().__init__(max_failures=max_failures, window_s=window_s, max_sources=max_sources)
        self._cluster = cluster
        self._limit = max_failures
        self._window = window_s
        self._tasks: set[asyncio.Task[None]] = set()

    def failed(self, source: str, now: float) -> None:
        super().failed(source, now)
        task = asyncio.get_running_loop().create_task(self._count(source, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, source: str, now: float) -> None:
        try:
            total = await self._cluster.count_auth_failure(source, self._window)
        except (RedisError, OSError) as exc:
            logger.warning("cannot count a failed login in Redis: %s", exc.__class__.__name__)
            return
        if total >= self._limit:
            self.block(source, now)
