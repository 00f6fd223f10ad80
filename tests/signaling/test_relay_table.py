"""The relay table's pacing and bookkeeping (pure; the forwarding itself is tested
end to end in tests/link/test_relay_link.py)."""

from __future__ import annotations

from shared.messages import Role
from signaling.relay_table import RelayTable, TokenBucket


def test_within_the_burst_nothing_waits() -> None:
    bucket = TokenBucket(rate=1000, burst=2000, tokens=2000, stamp=0.0)
    assert bucket.delay(1500, now=0.0) == 0.0


def test_beyond_the_budget_the_sender_waits_for_the_deficit() -> None:
    bucket = TokenBucket(rate=1000, burst=2000, tokens=2000, stamp=0.0)
    bucket.delay(2000, now=0.0)
    assert bucket.delay(500, now=0.0) == 0.5  # 500 bytes at 1000 B/s
    assert bucket.delay(0, now=10.0) == 0.0  # refilled (capped at the burst) meanwhile


def test_sessions_belong_to_their_pair_and_are_capped_per_edge() -> None:
    table = RelayTable(bytes_per_s=1000, max_per_edge=1)
    session = table.open("s1", edge_id="e", worker_id="w", now=0.0)
    assert session.member(Role.EDGE, "e") and session.member(Role.WORKER, "w")
    assert not session.member(Role.EDGE, "w") and not session.member(Role.WORKER, "e")
    assert session.other(Role.EDGE) == (Role.WORKER, "w")
    assert not table.can_open("e") and table.can_open("other-edge")
    assert [s.session_id for s in table.of_peer(Role.WORKER, "w")] == ["s1"]
    assert table.close("s1") is session and len(table) == 0
