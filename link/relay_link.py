"""``RelayLink``: the same frames, carried over the two peers' signaling WebSockets.

The last resort when no WebRTC path exists (only outbound TCP to signaling allowed):
like Tailscale's DERP, signaling forwards each ``RelayData`` between the two peers it
brokered, and nothing else. Slower than a direct path, never unreachable. The
``SignalingClient`` routes a session's frames here; losing signaling loses the relay.

Every frame is sealed end to end (``link.relay_crypto``) once the session's keys are
known (``secure``): signaling forwards only ciphertext. A frame that fails to open
closes this session, and only this one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from link.base import LinkClosed, PathKind
from link.framed import DEFAULT_QUEUED_FRAMES, FramedLink
from link.relay_crypto import RelayCipher, RelayFrameRefused
from shared.messages import Message, RelayClose, RelayData

__all__ = ["RelayLink"]


class RelayLink(FramedLink):
    """One relayed session, from this peer's side."""

    def __init__(
        self,
        session_id: str,
        send: Callable[[Message], Awaitable[None]],
        *,
        on_close: Callable[[str], None],
        max_frame_bytes: int,
        max_message_bytes: int = 1024 * 1024,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        cipher: RelayCipher | None = None,
        label: str = "",
    ) -> None:
        super().__init__(
            path=PathKind.RELAY,
            max_frame_bytes=max_frame_bytes,
            max_message_bytes=max_message_bytes,
            max_queued_frames=max_queued_frames,
            label=label or f"relay/{session_id[:8]}",
        )
        self.session_id = session_id
        self._send = send
        self._on_close = on_close
        self._peer_closed = False
        self._cipher = cipher

    def secure(self, cipher: RelayCipher) -> None:
        """The key exchange finished (the edge, on ``RelayAccept``): frames flow now."""
        self._cipher = cipher

    def feed(self, data: bytes) -> None:
        """A ``RelayData`` for this session arrived: open it, then hand it in."""
        if self._closed:
            return
        if self._cipher is None:
            self._fail("relayed frame before the key exchange")
            return
        try:
            frame = self._cipher.open(data)
        except RelayFrameRefused as exc:
            self._fail(str(exc))
            return
        self._deliver(frame)

    def closed_by_peer(self) -> None:
        """A ``RelayClose`` arrived, or signaling went away."""
        self._peer_closed = True
        self._mark_closed()

    async def _send_frame(self, frame: bytes) -> None:
        if self._cipher is None:
            raise LinkClosed(f"link {self._label}: relayed session not keyed yet")
        sealed = self._cipher.seal(frame)
        try:
            await self._send(RelayData(session_id=self.session_id, data=sealed))
        except Exception as exc:  # signaling down: the relay path is gone with it
            self._mark_closed()
            raise LinkClosed(f"link {self._label}: signaling unavailable") from exc

    async def _close_transport(self) -> None:
        self._on_close(self.session_id)
        if not self._peer_closed:
            with contextlib.suppress(Exception):
                await self._send(RelayClose(session_id=self.session_id, reason="closed"))
