"""End-to-end encryption of relayed sessions: signaling forwards only ciphertext.

WebRTC paths are DTLS-encrypted between edge and worker, with the certificate
fingerprints carried through signaling in the SDP. The relay of last resort gets the
same property the same way (Tailscale's DERP relays only WireGuard packets):

* each side makes an ephemeral X25519 key per session; the public halves travel in
  ``RelayOpen.key`` (edge) and ``RelayAccept.key`` (worker), through signaling;
* HKDF-SHA256 over the shared secret, salted with the session id, bound to both public
  keys, gives one ChaCha20-Poly1305 key per direction (a frame cannot be reflected back
  to its sender);
* every frame is ``counter (8 bytes, big-endian) || ciphertext+tag``; the counter is the
  nonce and must be exactly the next one expected: a replayed, reordered, dropped or
  altered frame is refused, and the caller closes that session (only that one).

Signaling, its logs, its memory and its operator then see only ciphertext and frame
sizes. As with WebRTC's fingerprints, a signaling server that *actively* swaps the keys
could sit in the middle; passive reading, logging or a memory dump reveal nothing. A
peer that sends no key (one that predates this) is refused, never downgraded to
plaintext.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.errors import ProtocolError, TandemError
from shared.messages import RELAY_KEY_BYTES, Role

__all__ = [
    "FRAME_OVERHEAD",
    "RelayCipher",
    "RelayFrameRefused",
    "RelayHandshake",
    "RelayKeyRefused",
]

_COUNTER_BYTES = 8
_TAG_BYTES = 16
FRAME_OVERHEAD = _COUNTER_BYTES + _TAG_BYTES
"""Bytes an encrypted frame carries beyond its plaintext."""
_INFO = b"tandem relay v1"
_MAX_COUNTER = 2**64 - 1


class RelayKeyRefused(TandemError):
    """The other side's key is missing or unusable: no encrypted session, so none at all."""


class RelayFrameRefused(ProtocolError):
    """A relayed frame failed authentication, or came out of order: close the session."""


class RelayCipher:
    """One side's keys for one session: seal what it sends, open what it receives."""

    def __init__(self, send_key: bytes, recv_key: bytes) -> None:
        self._seal = ChaCha20Poly1305(send_key)
        self._open = ChaCha20Poly1305(recv_key)
        self._sent = 0
        self._expected = 0

    def seal(self, plaintext: bytes) -> bytes:
        counter = self._sent
        if counter >= _MAX_COUNTER:  # 2^64 frames: never, but a nonce must never repeat
            raise RelayFrameRefused("relayed session exhausted its nonces; reopen it")
        self._sent += 1
        prefix = counter.to_bytes(_COUNTER_BYTES, "big")
        return prefix + self._seal.encrypt(_nonce(prefix), plaintext, None)

    def open(self, frame: bytes) -> bytes:
        if len(frame) < FRAME_OVERHEAD:
            raise RelayFrameRefused(f"relayed frame of {len(frame)} bytes is too short")
        prefix = frame[:_COUNTER_BYTES]
        counter = int.from_bytes(prefix, "big")
        if counter != self._expected:
            kind = "replayed" if counter < self._expected else "out-of-order"
            raise RelayFrameRefused(
                f"{kind} relayed frame (counter {counter}, expected {self._expected})"
            )
        try:
            plaintext = self._open.decrypt(_nonce(prefix), frame[_COUNTER_BYTES:], None)
        except InvalidTag:
            raise RelayFrameRefused(
                "relayed frame failed authentication (altered in transit, or not from the peer)"
            ) from None
        self._expected += 1
        return plaintext


def _nonce(counter: bytes) -> bytes:
    return b"\x00\x00\x00\x00" + counter  # 96 bits: 32 zero bits, then the counter


class RelayHandshake:
    """This side's ephemeral X25519 key for one relayed session."""

    def __init__(self, session_id: str, role: Role) -> None:
        self._session_id = session_id
        self._role = role
        self._private = X25519PrivateKey.generate()
        self.public_key = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def cipher(self, peer_key: bytes) -> RelayCipher:
        """The session's keys, from the other side's public key; ``RelayKeyRefused`` if
        it sent none (a peer, or a signaling server, that predates encrypted relays) or
        one that is not a usable X25519 key."""
        peer = "worker" if self._role is Role.EDGE else "edge"
        if not peer_key:
            raise RelayKeyRefused(
                f"the {peer} sent no relay key (it, or signaling, predates end-to-end "
                "encrypted relays): refusing an unencrypted relayed session; upgrade it"
            )
        if len(peer_key) != RELAY_KEY_BYTES:
            raise RelayKeyRefused(f"the {peer}'s relay key is not {RELAY_KEY_BYTES} bytes")
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_key))
        except ValueError as exc:  # a low-order point: the shared secret would be zero
            raise RelayKeyRefused(f"the {peer}'s relay key is unusable") from exc
        edge_key, worker_key = (
            (self.public_key, peer_key) if self._role is Role.EDGE else (peer_key, self.public_key)
        )
        keys = HKDF(
            algorithm=hashes.SHA256(),
            length=64,
            salt=self._session_id.encode(),
            info=_INFO + edge_key + worker_key,
        ).derive(shared)
        to_worker, to_edge = keys[:32], keys[32:]
        if self._role is Role.EDGE:
            return RelayCipher(send_key=to_worker, recv_key=to_edge)
        return RelayCipher(send_key=to_edge, recv_key=to_worker)
