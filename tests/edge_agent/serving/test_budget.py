"""The daily cloud token budget: counting, the limit, and the UTC day rolling over."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.serving.budget import CloudBudget

MONDAY = date(2026, 3, 2)
TUESDAY = date(2026, 3, 3)


def test_no_limit_always_has_room() -> None:
    budget = CloudBudget(None)
    budget.record(10**9, MONDAY)
    assert budget.has_room(MONDAY)


def test_spent_budget_has_no_room_until_the_next_day() -> None:
    budget = CloudBudget(100)
    budget.record(60, MONDAY)
    assert budget.has_room(MONDAY)
    budget.record(40, MONDAY)
    assert (budget.spent(MONDAY), budget.has_room(MONDAY)) == (100, False)
    assert budget.has_room(TUESDAY) and budget.spent(TUESDAY) == 0
    budget.record(5, TUESDAY)
    assert budget.spent(TUESDAY) == 5


def test_rejects_a_zero_budget() -> None:
    with pytest.raises(ValueError):
        CloudBudget(0)
