"""``RelayLink``: the same frames, carried over the two peers' signaling WebSockets.

The last resort when no WebRTC path exists (only outbound TCP to signaling allowed):
like Tailscale's DERP, signaling forwards each ``RelayData`` between the two peers it
brokered, and nothing else. Slower than a direct path, never unreachable. The
``SignalingClient`` routes a session's frames here; losing signaling loses the relay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from link.base import LinkClosed, PathKind
from link.framed import DEFAULT_QUEUED_FRAMES, FramedLink
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

    def feed(self, data: bytes) -> None:
        """A ``RelayData`` for this session arrived."""
        self._deliver(data)

    def closed_by_peer(self) -> None:
        """A ``RelayClose`` arrived, or signaling went away."""
        self._peer_closed = True
        self._mark_closed()

    async def _send_frame(self, frame: bytes) -> None:
        try:
            await self._send(RelayData(session_id=self.session_id, data=frame))
        except Exception as exc:  # signaling down: the relay path is gone with it
            self._mark_closed()
            raise LinkClosed(f"link {self._label}: signaling unavailable") from exc

    async def _close_transport(self) -> None:
        self._on_close(self.session_id)
        if not self._peer_closed:
            with contextlib.suppress(Exception):
                await self._send(RelayClose(session_id=self.session_id, reason="closed"))
