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

from link.base import Link, LinkClosed, PathKind
from link.datachannel import DataChannelLink
from link.framed import DEFAULT_QUEUED_FRAMES
from link.relay_link import RelayLink
from link.rtc import (
    IcePolicy,
    RtcAnswer,
    RtcOffer,
    accept_offer,
    create_offer,
    parse_addresses,
    quiet_webrtc_logs,
    rtc_configuration,
)
from link.signaling_client import (
    SignalingClient,
    SignalingRefused,
    SignalingState,
    SignalingUnavailable,
)

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
    "parse_addresses",
    "quiet_webrtc_logs",
    "rtc_configuration",
]
