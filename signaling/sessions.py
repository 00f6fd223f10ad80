"""Offers brokered to a worker and still waiting for its answer.

The table is what lets signaling refuse an answer from a worker that was never asked,
and tell an edge when the worker it was given disappears. Entries expire after
``offer_timeout_s``; expiry is checked whenever the table is used, so that no timer task
has to be owned and cancelled. Pure and synchronous: the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PendingSession", "SessionTable"]


@dataclass(frozen=True)
class PendingSession:
    """An offer from ``edge_id`` forwarded to ``worker_id`` at ``created_at``."""

    session_id: str
    edge_id: str
    worker_id: str
    created_at: float


class SessionTable:
    """Pending sessions by id, oldest first, forgotten ``timeout_s`` after they open."""

    def __init__(self, *, timeout_s: float, clock: Callable[[], float]) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        # Insertion order is creation order (``open`` re-inserts), so expiry only ever
        # looks at the front of the dict.
        self._sessions: dict[str, PendingSession] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._sessions)

    def _expire(self) -> None:
        deadline = self._clock() - self._timeout_s
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.created_at > deadline:
                break
            del self._sessions[oldest.session_id]

    def open(self, session_id: str, *, edge_id: str, worker_id: str) -> PendingSession:
        """Record a brokered offer, replacing an earlier one with the same id."""
        self._expire()
        self._sessions.pop(session_id, None)
        session = PendingSession(session_id, edge_id, worker_id, self._clock())
        self._sessions[session_id] = session
        return session

    def get(self, session_id: str) -> PendingSession | None:
        """The live session with this id, or ``None`` (never opened, answered, expired)."""
        self._expire()
        return self._sessions.get(session_id)

    def close(self, session_id: str) -> PendingSession | None:
        """Remove and return the session (its answer arrived, or it failed)."""
        self._expire()
        return self._sessions.pop(session_id, None)

    def drop_edge(self, edge_id: str) -> list[PendingSession]:
        """Remove the sessions of an edge that went away."""
        return self._drop(lambda s: s.edge_id == edge_id)

    def drop_worker(self, worker_id: str) -> list[PendingSession]:
        """Remove the sessions waiting on a worker that went away; the caller tells their edges."""
        return self._drop(lambda s: s.worker_id == worker_id)

    def _drop(self, match: Callable[[PendingSession], bool]) -> list[PendingSession]:
        self._expire()
        dropped = [s for s in self._sessions.values() if match(s)]
        for session in dropped:
            del self._sessions[session.session_id]
        return dropped
