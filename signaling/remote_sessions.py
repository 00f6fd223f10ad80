"""Sessions homed on another instance, as seen by the instance of their worker.

An edge's offers and relayed sessions live on the edge's home instance (``Broker``);
when the chosen worker is connected elsewhere, that worker's instance only needs to
know where to send what the worker says about the session (its answer, its relayed
frames). This table is that memory: session id → origin instance, plus, for a relayed
session, the pace of the worker's frames (paced here, where the worker's own socket is
read, so a fast worker slows only itself) and the bounded pipe of frames to the worker
(``--relay-buffer-bytes`` holds on this side too). Offers are forgotten after
``offer_timeout_s``, like ``OfferTable``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.relay_pipe import RelayPipe
from signaling.relay_table import TokenBucket

__all__ = ["RemoteSessions", "Route"]


@dataclass
class Route:
    """Where to send what the local worker says about session ``session_id``."""

    session_id: str
    origin: str
    worker_id: str
    expires_at: float | None
    """Offers only: when an unanswered offer is forgotten (relays end by ``RelayClose``)."""
    bucket: TokenBucket | None = None
    pipe: RelayPipe | None = None

    @property
    def relay(self) -> bool:
        return self.bucket is not None


class RemoteSessions:
    """Routes by session id; time is an argument."""

    def __init__(self, *, offer_timeout_s: float, relay_bytes_per_s: int) -> None:
        self._offer_timeout_s = offer_timeout_s
        self._rate = relay_bytes_per_s
        self._routes: dict[str, Route] = {}

    def __len__(self) -> int:
        return len(self._routes)

    def open(
        self, session_id: str, *, origin: str, worker_id: str, relay: bool, now: float
    ) -> None:
        old = self._routes.pop(session_id, None)
        if old is not None and old.pipe is not None:
            old.pipe.abort()
        if relay:
            burst = 2 * self._rate
            bucket = TokenBucket(rate=self._rate, burst=burst, tokens=burst, stamp=now)
            self._routes[session_id] = Route(session_id, origin, worker_id, None, bucket)
        else:
            expires = now + self._offer_timeout_s
            self._routes[session_id] = Route(session_id, origin, worker_id, expires)

    def get(self, session_id: str, now: float) -> Route | None:
        route = self._routes.get(session_id)
        if route is not None and route.expires_at is not None and route.expires_at <= now:
            del self._routes[session_id]
            return None
        return route

    def close(self, session_id: str) -> Route | None:
        return self._routes.pop(session_id, None)

    def of_worker(self, worker_id: str) -> list[Route]:
        return [r for r in self._routes.values() if r.worker_id == worker_id]

    def of_all(self) -> list[Route]:
        return list(self._routes.values())

    def prune(self, now: float) -> None:
        """Forget offers never answered (called now and then, so none lingers)."""
        for route in list(self._routes.values()):
            if route.expires_at is not None and route.expires_at <= now:
                del self._routes[route.session_id]
