from __future__ import annotations

from signaling.sessions import PendingSession, SessionTable
from tests.signaling.support import START, FakeClock


def table(clock: FakeClock, timeout_s: float = 30.0) -> SessionTable:
    return SessionTable(timeout_s=timeout_s, clock=clock)


def test_open_get_close() -> None:
    clock = FakeClock()
    sessions = table(clock)
    opened = sessions.open("s1", edge_id="e", worker_id="w")
    assert opened == PendingSession("s1", "e", "w", START)
    assert sessions.get("s1") == opened
    assert sessions.close("s1") == opened
    assert sessions.get("s1") is None
    assert sessions.close("s1") is None


def test_sessions_expire_after_timeout() -> None:
    clock = FakeClock()
    sessions = table(clock, timeout_s=30.0)
    sessions.open("old", edge_id="e", worker_id="w")
    clock.now += 20
    sessions.open("new", edge_id="e", worker_id="w")
    clock.now += 10  # "old" is 30 s old: gone; "new" is 10 s old: kept
    assert sessions.get("old") is None
    assert sessions.get("new") is not None
    assert len(sessions) == 1


def test_reopening_restarts_the_timeout() -> None:
    clock = FakeClock()
    sessions = table(clock, timeout_s=30.0)
    sessions.open("s", edge_id="e", worker_id="w1")
    sessions.open("other", edge_id="e", worker_id="w1")
    clock.now += 25
    sessions.open("s", edge_id="e", worker_id="w2")
    clock.now += 10
    assert sessions.get("other") is None
    assert sessions.get("s") == PendingSession("s", "e", "w2", START + 25)


def test_drop_by_edge_and_worker() -> None:
    sessions = table(FakeClock())
    sessions.open("a", edge_id="e1", worker_id="w1")
    sessions.open("b", edge_id="e2", worker_id="w1")
    sessions.open("c", edge_id="e2", worker_id="w2")
    assert [s.session_id for s in sessions.drop_worker("w1")] == ["a", "b"]
    assert [s.session_id for s in sessions.drop_edge("e2")] == ["c"]
    assert len(sessions) == 0
