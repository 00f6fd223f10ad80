"""Workers as the edge sees them: a ``Peer`` per open link, a ``PeerPool`` keeping one warm."""

from edge_agent.peers.guard import StreamBounds
from edge_agent.peers.peer import Peer, PeerState, StreamInbox
from edge_agent.peers.pool import PeerPool, PoolConfig

__all__ = ["Peer", "PeerPool", "PeerState", "PoolConfig", "StreamBounds", "StreamInbox"]
