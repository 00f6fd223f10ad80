"""Paths to a worker. Each returns a ``link.Link``; peers never branch on how it was made,
only on ``link.path``. Today: WebRTC (direct or TURN). The signaling relay comes next."""

from edge_agent.transport.webrtc import connect_webrtc

__all__ = ["connect_webrtc"]
