"""Offers brokered to a worker and still waiting for its answer.

The table is what lets signaling refuse an answer from a worker that was never asked,
and tell an edge when the worker it was given disappears. Entries expire after
``offer_timeout_s``; expiry is checked whenever the table is used, so that no timer task
has to be owned and cancelled. Pure and synchronous: the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["OfferTable", "PendingOffer"]


@dataclass(frozen=True)
class PendingOffer:
    """An offer from ``edge_id`` forwarded to ``worker_id`` at ``created_at``."""

    session_id: str
    edge_id: str
    worker_id: str
    created_at: float


class OfferTable:
    """Pending offers by session id, oldest first, forgotten ``timeout_s`` after they open."""

    def __init__(self, *, timeout_s: float, clock: Callable[[], float]) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        # Insertion order is creation order (``open`` re-inserts), so expiry only ever
        # looks at the front of the dict.
        self._offers: dict[str, PendingOffer] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._offers)

    def _expire(self) -> None:
        deadline = self._clock() - self._timeout_s
        while self._offers:
            oldest = next(iter(self._offers.values()))
            if oldest.created_at > deadline:
                break
            del self._offers[oldest.session_id]

    def open(self, session_id: str, *, edge_id: str, worker_id: str) -> PendingOffer:
        """Record a brokered offer, replacing an earlier one with the same id."""
        self._expire()
        self._offers.pop(session_id, None)
        offer = PendingOffer(session_id, edge_id, worker_id, self._clock())
        self._offers[session_id] = offer
        return offer

    def get(self, session_id: str) -> PendingOffer | None:
        """The pending offer of this session, or ``None`` (never opened, answered, expired)."""
        self._expire()
        return self._offers.get(session_id)

    def close(self, session_id: str) -> PendingOffer | None:
        """Remove and return the offer (its answer arrived, or it failed)."""
        self._expire()
        return self._offers.pop(session_id, None)

    def workers(self) -> set[str]:
        """The workers that pending offers wait on."""
        self._expire()
        return {o.worker_id for o in self._offers.values()}

    def drop_edge(self, edge_id: str) -> list[PendingOffer]:
        """Remove the offers of an edge that went away."""
        return self._drop(lambda o: o.edge_id == edge_id)

    def drop_worker(self, worker_id: str) -> list[PendingOffer]:
        """Remove the offers waiting on a worker that went away; the caller tells their edges."""
        return self._drop(lambda o: o.worker_id == worker_id)

    def _drop(self, match: Callable[[PendingOffer], bool]) -> list[PendingOffer]:
        self._expire()
        dropped = [o for o in self._offers.values() if match(o)]
        for offer in dropped:
            del self._offers[offer.session_id]
        return dropped
