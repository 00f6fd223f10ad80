"""``OfferTable``: offers brokered to a worker and waiting for its answer (pure, fake clock)."""

from __future__ import annotations

from signaling.pending_offers import OfferTable, PendingOffer
from tests.signaling.support import START, FakeClock


def table(clock: FakeClock, timeout_s: float = 30.0) -> OfferTable:
    return OfferTable(timeout_s=timeout_s, clock=clock)


def test_open_get_close() -> None:
    clock = FakeClock()
    offers = table(clock)
    opened = offers.open("s1", edge_id="e", worker_id="w")
    assert opened == PendingOffer("s1", "e", "w", START)
    assert offers.get("s1") == opened
    assert offers.close("s1") == opened
    assert offers.get("s1") is None
    assert offers.close("s1") is None


def test_offers_expire_after_timeout() -> None:
    clock = FakeClock()
    offers = table(clock, timeout_s=30.0)
    offers.open("old", edge_id="e", worker_id="w")
    clock.now += 20
    offers.open("new", edge_id="e", worker_id="w")
    clock.now += 10  # "old" is 30 s old: gone; "new" is 10 s old: kept
    assert offers.get("old") is None
    assert offers.get("new") is not None
    assert len(offers) == 1


def test_reopening_restarts_the_timeout() -> None:
    clock = FakeClock()
    offers = table(clock, timeout_s=30.0)
    offers.open("s", edge_id="e", worker_id="w1")
    offers.open("other", edge_id="e", worker_id="w1")
    clock.now += 25
    offers.open("s", edge_id="e", worker_id="w2")
    clock.now += 10
    assert offers.get("other") is None
    assert offers.get("s") == PendingOffer("s", "e", "w2", START + 25)


def test_drop_by_edge_and_worker() -> None:
    offers = table(FakeClock())
    offers.open("a", edge_id="e1", worker_id="w1")
    offers.open("b", edge_id="e2", worker_id="w1")
    offers.open("c", edge_id="e2", worker_id="w2")
    assert [s.session_id for s in offers.drop_worker("w1")] == ["a", "b"]
    assert [s.session_id for s in offers.drop_edge("e2")] == ["c"]
    assert len(offers) == 0
