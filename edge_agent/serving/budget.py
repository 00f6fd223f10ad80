"""``CloudBudget``: how many cloud tokens are left today.

Escalating costs money; a user who sets ``--cloud-daily-token-budget`` wants a hard cap,
after which ``auto`` requests are answered locally with reason ``budget-exhausted``.
The day is passed in (UTC ``date``), never read from a clock here, so the rollover is
testable and the router stays pure. Counting is best effort: requests already streaming
when the budget runs out finish (cutting an answer mid-sentence would be worse).
"""

from __future__ import annotations

from datetime import date

__all__ = ["CloudBudget"]


class CloudBudget:
    """Cloud tokens (prompt + completion) spent per day against a daily limit."""

    def __init__(self, daily_tokens: int | None) -> None:
        if daily_tokens is not None and daily_tokens < 1:
            raise ValueError("the daily cloud token budget must be >= 1 (or None: no limit)")
        self.daily_tokens = daily_tokens
        self._day: date | None = None
        self._spent = 0

    def spent(self, today: date) -> int:
        """Tokens recorded on ``today``."""
        return self._spent if self._day == today else 0

    def has_room(self, today: date) -> bool:
        """Whether ``auto`` requests may still go to the cloud on ``today``."""
        return self.daily_tokens is None or self.spent(today) < self.daily_tokens

    def record(self, tokens: int, today: date) -> None:
        """Count ``tokens`` served by the cloud on ``today`` (a new day starts at zero)."""
        if self._day != today:
            self._day, self._spent = today, 0
        self._spent += max(0, tokens)
