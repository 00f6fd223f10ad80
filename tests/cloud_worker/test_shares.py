"""``EdgeShares``: each edge's streams and links on a worker (pure bookkeeping; the
attack is in ``tests/security/test_edge_flooding.py``)."""

from __future__ import annotations

from cloud_worker.shares import EdgeShares, streams_per_edge


def test_the_default_share_is_half_the_intake() -> None:
    assert streams_per_edge(capacity=1, max_queue=16, share=0.5, explicit=None) == 8
    assert streams_per_edge(capacity=1, max_queue=0, share=0.5, explicit=None) == 1
    assert streams_per_edge(capacity=16, max_queue=16, share=1.0, explicit=None) == 32
    assert streams_per_edge(capacity=1, max_queue=16, share=0.5, explicit=3) == 3


def test_each_edge_has_its_own_count() -> None:
    shares = EdgeShares(max_streams=2, max_links=1)
    assert shares.take_stream("a") and shares.take_stream("a")
    assert not shares.take_stream("a")
    assert shares.take_stream("b")
    shares.release_stream("a")
    assert shares.streams("a") == 1 and shares.take_stream("a")
    assert shares.take_link("a") and not shares.take_link("a") and shares.take_link("b")
    shares.release_link("a")
    assert shares.take_link("a")
