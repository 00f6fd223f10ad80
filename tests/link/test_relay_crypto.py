"""``link.relay_crypto``: the keys and the frame seal of an encrypted relayed session."""

from __future__ import annotations

import pytest

from link.relay_crypto import (
    FRAME_OVERHEAD,
    RelayCipher,
    RelayFrameRefused,
    RelayHandshake,
    RelayKeyRefused,
)
from shared.messages import Role


def keyed(session_id: str = "s-1") -> tuple[RelayCipher, RelayCipher]:
    edge = RelayHandshake(session_id, Role.EDGE)
    worker = RelayHandshake(session_id, Role.WORKER)
    return edge.cipher(worker.public_key), worker.cipher(edge.public_key)


def test_both_directions_round_trip_and_hide_the_plaintext() -> None:
    edge, worker = keyed()
    for n in range(3):
        sealed = edge.seal(b"prompt %d" % n)
        assert b"prompt" not in sealed and len(sealed) == len(b"prompt 0") + FRAME_OVERHEAD
        assert worker.open(sealed) == b"prompt %d" % n
        assert edge.open(worker.seal(b"reply")) == b"reply"


def test_each_direction_has_its_own_key() -> None:
    edge, _ = keyed()
    with pytest.raises(RelayFrameRefused, match="authentication"):
        edge.open(edge.seal(b"reflected back to its sender"))


def test_keys_are_per_session() -> None:
    edge_handshake = RelayHandshake("s-1", Role.EDGE)
    worker_handshake = RelayHandshake("s-2", Role.WORKER)  # same keys, other session id
    edge = edge_handshake.cipher(worker_handshake.public_key)
    worker = worker_handshake.cipher(edge_handshake.public_key)
    with pytest.raises(RelayFrameRefused):
        worker.open(edge.seal(b"x"))


def test_replay_reorder_and_tampering_are_refused() -> None:
    edge, worker = keyed()
    first, second = edge.seal(b"one"), edge.seal(b"two")
    with pytest.raises(RelayFrameRefused, match="out-of-order"):
        worker.open(second)
    assert worker.open(first) == b"one"
    with pytest.raises(RelayFrameRefused, match="replayed"):
        worker.open(first)
    with pytest.raises(RelayFrameRefused, match="authentication"):
        worker.open(second[:-1] + bytes((second[-1] ^ 1,)))
    with pytest.raises(RelayFrameRefused, match="too short"):
        worker.open(b"\x00" * (FRAME_OVERHEAD - 1))


@pytest.mark.parametrize(
    ("key", "why"),
    [(b"", "sent no relay key"), (b"\x01" * 31, "not 32 bytes"), (b"\x00" * 32, "unusable")],
)
def test_missing_or_bad_keys_are_refused(key: bytes, why: str) -> None:
    with pytest.raises(RelayKeyRefused, match=why):
        RelayHandshake("s-1", Role.EDGE).cipher(key)
