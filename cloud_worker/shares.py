"""Each edge's share of this worker: its streams and its links, across all its sessions.

A worker's intake (its capacity plus ``--max-queue`` waiting) is shared by every edge
that signaling sends it. Without a share per edge, one edge token could fill it with
concurrent requests, and the next edge's request would be refused as overloaded; and
every offer an edge makes costs the worker a peer connection and a TURN allocation. So
streams are counted per edge (an edge may hold several links: a primary, an upgrade, a
relay) and refused past ``--max-streams-per-peer`` (by default ``--edge-share`` of the
intake), and links past ``--max-links-per-edge``. Pure bookkeeping: callers refuse.
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["EdgeShares", "streams_per_edge"]


def streams_per_edge(*, capacity: int, max_queue: int, share: float, explicit: int | None) -> int:
    """The per-edge stream limit: ``explicit`` if set, else ``share`` of the intake (at
    least one)."""
    if explicit is not None:
        return explicit
    return max(1, math.floor((capacity + max_queue) * share))


class EdgeShares:
    """Streams and links held per edge id, against their limits."""

    def __init__(self, *, max_streams: int, max_links: int) -> None:
        self.max_streams = max_streams
        self.max_links = max_links
        self._streams: Counter[str] = Counter()
        self._links: Counter[str] = Counter()

    def streams(self, edge_id: str) -> int:
        return self._streams[edge_id]

    def take_stream(self, edge_id: str) -> bool:
        """Count one more stream for ``edge_id``; ``False`` (nothing counted) past its share."""
        return _take(self._streams, edge_id, self.max_streams)

    def release_stream(self, edge_id: str) -> None:
        _release(self._streams, edge_id)

    def take_link(self, edge_id: str) -> bool:
        """Count one more link (an offer being answered, a session); ``False`` past the cap."""
        return _take(self._links, edge_id, self.max_links)

    def release_link(self, edge_id: str) -> None:
        _release(self._links, edge_id)


def _take(counts: Counter[str], key: str, limit: int) -> bool:
    if counts[key] >= limit:
        return False
    counts[key] += 1
    return True


def _release(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
