"""The clock the serving pipeline reads, injected so that a day can be made to roll over
(the budget) and time measured (time to first token) without sleeping in tests."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations)."""
        ...

    def today(self) -> date:
        """The budget's day: UTC, so that it rolls over at the same instant everywhere."""
        ...


class SystemClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def today(self) -> date:
        return datetime.now(UTC).date()


SYSTEM_CLOCK = SystemClock()
