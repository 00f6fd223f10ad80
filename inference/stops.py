"""Stop strings on a token stream: never emit text that a stop string later claims.

Text arrives a token at a time; a stop string can span tokens, and two stop strings can
overlap (``"a"`` and ``".aa"``). ``StopScanner`` holds back the tail that could still
become a stop string and, when one completes, checks that no earlier-starting one is
still open before it stops. Pure: the runner feeds it; tests feed it directly.
"""

from __future__ import annotations

__all__ = ["StopScanner", "find_stop", "holdback"]


def find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Index where the earliest stop string starts in ``text``, if any."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def holdback(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that could still grow into a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


class StopScanner:
    """Feeds text through the stop strings; ``stopped`` turns true when one completes."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add generated text; return the part that is now safe to send."""
        if self.stopped:
            return ""
        self._pending += text
        first = find_stop(self._pending, self._stops)
        open_from = len(self._pending) - holdback(self._pending, self._stops)
        if first is not None and first <= open_from:
            out, self._pending, self.stopped = self._pending[:first], "", True
            return out
        safe = open_from if first is None else min(first, open_from)
        out, self._pending = self._pending[:safe], self._pending[safe:]
        return out

    def finish(self, text: str = "") -> str:
        """Generation ended: the held-back rest (plus ``text``), cut at any stop string."""
        if self.stopped:
            return ""
        self._pending += text
        first = find_stop(self._pending, self._stops)
        out = self._pending if first is None else self._pending[:first]
        self._pending, self.stopped = "", first is not None
        return out
