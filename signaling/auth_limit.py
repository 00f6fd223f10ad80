"""Refuse a source that keeps presenting bad tokens, for a while.

Guessing or replaying tokens costs an attacker one HTTP request each; past
``max_failures`` failed attempts from one source within ``window_s``, that source's
further *failures* get 429 instead of 401 until the window has passed. A valid token is
never asked about (``signaling.auth``): many peers may share one source address behind a
proxy, and one of them failing must not lock out the rest. Pure: time is an argument.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FailureLimiter"]


class FailureLimiter:
    """Sliding-window count of failed authentications per source address."""

    def __init__(self, *, max_failures: int, window_s: float, max_sources: int = 10_000) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._max_sources = max_sources
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float]:
        times = self._failures.get(source, deque())
        while times and times[0] <= now - self._window_s:
            times.popleft()
        return times

    def blocked_for(self, source: str, now: float) -> float:
        """Seconds ``source`` must still wait (0: it may try)."""
        times = self._recent(source, now)
        if len(times) < self._max_failures:
            return 0.0
        return max(0.0, times[0] + self._window_s - now)

    def block(self, source: str, now: float) -> None:
        """Count ``source`` as at the limit from ``now`` (other instances saw its failures)."""
        self._failures[source] = deque([now] * self._max_failures)

    def failed(self, source: str, now: float) -> None:
        if source not in self._failures and len(self._failures) >= self._max_sources:
            # Bounded memory under a spray of sources: forget the stalest first.
            oldest = min(
                self._failures, key=lambda s: self._failures[s][-1] if self._failures[s] else 0.0
            )
            del self._failures[oldest]
        times = self._recent(source, now)
        times.append(now)
        self._failures[source] = times
