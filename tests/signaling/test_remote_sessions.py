"""The worker-side memory of sessions homed on another instance: offers expire like the
offer table's, relayed sessions stay until closed and are paced."""

from __future__ import annotations

from signaling.remote_sessions import RemoteSessions


def test_offers_expire_relays_do_not() -> None:
    routes = RemoteSessions(offer_timeout_s=30, relay_bytes_per_s=1000)
    routes.open("o1", origin="A", worker_id="w1", relay=False, now=0)
    routes.open("r1", origin="A", worker_id="w1", relay=True, now=0)
    assert routes.get("o1", 29.9) is not None
    assert routes.get("o1", 30) is None  # forgotten, as an unanswered offer is
    route = routes.get("r1", 10_000)
    assert route is not None and route.relay and route.origin == "A"
    assert {r.session_id for r in routes.of_worker("w1")} == {"r1"}


def test_relay_frames_are_paced_at_the_configured_rate() -> None:
    routes = RemoteSessions(offer_timeout_s=30, relay_bytes_per_s=1000)
    routes.open("r1", origin="A", worker_id="w1", relay=True, now=0)
    route = routes.get("r1", 0)
    assert route is not None and route.bucket is not None
    assert route.bucket.delay(2000, 0) == 0  # the burst: twice the rate
    assert route.bucket.delay(500, 0) == 0.5  # then the rate


def test_prune_and_close() -> None:
    routes = RemoteSessions(offer_timeout_s=1, relay_bytes_per_s=1000)
    routes.open("o1", origin="A", worker_id="w1", relay=False, now=0)
    routes.open("o2", origin="B", worker_id="w2", relay=False, now=5)
    routes.prune(5.5)
    assert len(routes) == 1
    closed = routes.close("o2")
    assert closed is not None and closed.origin == "B"
    assert len(routes) == 0
