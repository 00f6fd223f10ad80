"""Links: one ordered, reliable stream of Tandem messages between an edge and a worker.

Both processes need the same glue around a WebRTC data channel (framing, splitting,
reassembly, backpressure, a bounded receive queue, mapping aiortc's errors), so it lives
here once, as a library that imports no process. The edge offers and the worker
answers (``link.rtc``); each wraps the resulting channel in a ``DataChannelLink``. When
no WebRTC path opens, a ``RelayLink`` (``link.relay_link``: the same frames over the two
peers' signaling WebSockets) implements the same ``Link``. ``SignalingClient``
(``link.signaling_client``) is each peer's side of the signaling server (the
``signaling`` package).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from link.base import Link, LinkClosed, PathKind
from link.datachannel import DataChannelLink
from link.framed import DEFAULT_QUEUED_FRAMES
from link.ice import IcePolicy, parse_addresses, quiet_webrtc_logs
from link.relay_link import RelayLink
from link.signaling_client import SignalingClient, SignalingState
from link.signaling_replies import SignalingRefused, SignalingUnavailable

if TYPE_CHECKING:
    from link.rtc import RtcAnswer, RtcOffer, accept_offer, create_offer, rtc_configuration

_RTC_NAMES = frozenset(
    {"RtcAnswer", "RtcOffer", "accept_offer", "create_offer", "rtc_configuration"}
)
"""Imported from ``link.rtc`` on first use: it imports aiortc (and PyAV, ~25 MB of RSS),
which a process that never opens a WebRTC link need not pay for."""


_rtc_loaded = False


async def load_rtc() -> None:
    """Import ``link.rtc`` on a worker thread, once: aiortc and PyAV take half a second
    of imports (more on a busy Pi), which on the event loop would stall every stream and
    request meanwhile; an edge's first WebRTC attempt runs beside its first requests
    (relay first). The GIL is shared, so the loop slows down rather than stops."""
    global _rtc_loaded
    if not _rtc_loaded:  # import_module on the thread also waits out an import under way
        await asyncio.to_thread(importlib.import_module, "link.rtc")
        _rtc_loaded = True


def __getattr__(name: str) -> Any:
    if name in _RTC_NAMES:
        value = getattr(importlib.import_module("link.rtc"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'link' has no attribute {name!r}")


__all__ = [
    "DEFAULT_QUEUED_FRAMES",
    "DataChannelLink",
    "IcePolicy",
    "Link",
    "LinkClosed",
    "PathKind",
    "RelayLink",
    "RtcAnswer",
    "RtcOffer",
    "SignalingClient",
    "SignalingRefused",
    "SignalingState",
    "SignalingUnavailable",
    "accept_offer",
    "create_offer",
    "load_rtc",
    "parse_addresses",
    "quiet_webrtc_logs",
    "rtc_configuration",
]
