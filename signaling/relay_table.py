"""The relay of last resort, signaling's side: the table of relayed sessions, each paced.

Only sessions this server brokered exist here, and a frame is forwarded only from one
member of its pair to the other; anything else is refused. Each session is paced by a
token bucket (bytes per second): a peer sending faster simply waits, which slows its
own WebSocket, never anyone else's. Once accepted, a session has a bounded pipe per
direction (``signaling.relay_pipe``), so a slow receiver holds up only that session.

Frames are end-to-end ciphertext between edge and worker (``link.relay_crypto``):
nothing here can read them, and nothing needs to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.messages import Role
from signaling.relay_pipe import RelayPipe

__all__ = ["RelaySession", "RelayTable", "TokenBucket"]


@dataclass
class TokenBucket:
    """``rate`` bytes per second, bursts up to ``burst`` bytes. Time is an argument."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0

    def delay(self, nbytes: int, now: float) -> float:
        """Take ``nbytes``; seconds to wait before sending them (0 if within budget)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= nbytes
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class RelaySession:
    session_id: str
    edge_id: str
    worker_id: str
    bucket: TokenBucket
    accepted: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pipes: dict[Role, RelayPipe] = field(default_factory=dict)
    """Once accepted: the frames waiting for each member, keyed by the member's role."""

    def other(self, role: Role) -> tuple[Role, str]:
        """Who a frame from ``role`` goes to."""
        return (Role.WORKER, self.worker_id) if role is Role.EDGE else (Role.EDGE, self.edge_id)

    def member(self, role: Role, peer_id: str) -> bool:
        return peer_id == (self.edge_id if role is Role.EDGE else self.worker_id)


class RelayTable:
    """The relayed sessions this server brokered."""

    def __init__(
        self, *, bytes_per_s: int, max_per_edge: int, buffer_bytes: int = 1024 * 1024
    ) -> None:
        self._sessions: dict[str, RelaySession] = {}
        if max_per_edge < 0:
            raise ValueError("max_per_edge must be 0 (no relayed sessions) or more")
        self._bytes_per_s = bytes_per_s
        self.max_per_edge = max_per_edge
        """Relayed sessions one edge may hold at once; 0: none at all."""
        self.buffer_bytes = buffer_bytes
        """Bound of each pipe (``--relay-buffer-bytes``)."""

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> RelaySession | None:
        return self._sessions.get(session_id)

    def can_open(self, edge_id: str) -> bool:
        held = sum(1 for s in self._sessions.values() if s.edge_id == edge_id)
        return held < self.max_per_edge

    def open(self, session_id: str, *, edge_id: str, worker_id: str, now: float) -> RelaySession:
        bucket = TokenBucket(
            rate=self._bytes_per_s,
            burst=2 * self._bytes_per_s,
            tokens=2 * self._bytes_per_s,
            stamp=now,
        )
        session = RelaySession(session_id, edge_id, worker_id, bucket)
        self._sessions[session_id] = session
        return session

    def close(self, session_id: str) -> RelaySession | None:
        return self._sessions.pop(session_id, None)

    def all(self) -> list[RelaySession]:
        return list(self._sessions.values())

    def of_peer(self, role: Role, peer_id: str) -> list[RelaySession]:
        return [s for s in self._sessions.values() if s.member(role, peer_id)]
