"""Several signaling instances acting as one: the interface the broker sees.

A peer is connected to exactly one instance (its *home*); the broker keeps its local
state there (an edge's pending offers and relayed sessions live on the edge's home, so
their per-edge limits hold globally). What crosses instances is small: who is where
(presence), which workers exist and their load (the registry), and messages addressed
to a peer on another instance. ``Cluster`` is that channel; ``signaling.redis_cluster``
implements it on Redis. Without ``--redis-url`` there is no cluster at all and the
broker behaves exactly as a single process always did.

``RemotePeer`` lets the broker treat a peer on another instance like a local one: its
``send`` publishes the message to that instance, which hands it to the peer's socket.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from shared.messages import Message, Role

__all__ = ["Cluster", "ClusterInbox", "RemotePeer"]


class ClusterInbox(Protocol):
    """What an instance does with what other instances send it (the broker)."""

    async def cluster_deliver(self, origin: str, role: Role, peer_id: str, msg: Message) -> None:
        """Hand ``msg`` to the local peer ``(role, peer_id)``; ``origin`` sent it."""
        ...

    async def cluster_handle(self, origin: str, role: Role, peer_id: str, msg: Message) -> None:
        """Act on ``msg`` as if the peer ``(role, peer_id)`` on ``origin`` had sent it here."""
        ...

    async def cluster_gone(self, origin: str, role: Role, peer_id: str) -> None:
        """The peer left ``origin``: end what this instance holds for it."""
        ...

    async def cluster_probe(self, role: Role, peer_id: str, resume: bytes | None = None) -> bool:
        """Whether the local peer keeps its id against a newcomer elsewhere: ``False`` at
        once (its connection closed) if ``resume`` is the digest of its resume secret,
        else whether it answers a ping."""
        ...

    async def cluster_sweep(self) -> None:
        """Periodic: end sessions whose remote member's instance is gone."""
        ...


class Cluster(ABC):
    """Presence and message passing between signaling instances."""

    instance_id: str

    @abstractmethod
    async def start(self, inbox: ClusterInbox) -> None:
        """Announce this instance and start receiving (``inbox`` gets what arrives)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop receiving and heart-beating; this instance's presence then expires."""

    @abstractmethod
    async def holder(self, role: Role, peer_id: str) -> str | None:
        """The instance the peer is connected to (unexpired), or ``None``."""

    @abstractmethod
    async def claim(self, role: Role, peer_id: str) -> None:
        """Record that the peer is connected here (refreshed by heartbeats)."""

    @abstractmethod
    async def release(self, role: Role, peer_id: str) -> None:
        """Forget the peer's presence here, unless another instance has claimed it since."""

    @abstractmethod
    async def deliver(self, instance: str, role: Role, peer_id: str, msg: Message) -> bool:
        """Ask ``instance`` to send ``msg`` to its peer; ``False`` if no instance listened."""

    @abstractmethod
    async def forward(self, instance: str, role: Role, peer_id: str, msg: Message) -> bool:
        """Ask ``instance`` to handle ``msg`` from our local peer ``(role, peer_id)``."""

    @abstractmethod
    async def gone(self, instance: str, role: Role, peer_id: str) -> None:
        """Tell ``instance`` our local peer left."""

    @abstractmethod
    async def probe(
        self,
        instance: str,
        role: Role,
        peer_id: str,
        timeout_s: float,
        resume: bytes | None = None,
    ) -> bool:
        """Whether ``instance``'s connection of the peer keeps its id (``ClusterInbox.
        cluster_probe`` there, with the newcomer's ``resume`` digest); ``False`` on no
        reply."""

    @abstractmethod
    async def count_auth_failure(self, source: str, window_s: float) -> int:
        """Record a failed authentication from ``source``; failures in this window, all
        instances together."""


class RemotePeer:
    """A ``takeover.PeerConnection`` for a peer whose socket is on another instance."""

    def __init__(self, cluster: Cluster, instance: str, role: Role, peer_id: str) -> None:
        self.cluster = cluster
        self.instance = instance
        self.role = role
        self.peer_id = peer_id

    async def send(self, message: Message) -> bool:
        try:
            return await self.cluster.deliver(self.instance, self.role, self.peer_id, message)
        except (ConnectionError, OSError):
            return False

    async def close(self, code: int, reason: str) -> None:
        """Its own instance closes it (after a failed probe); nothing to do here."""

    async def alive(self, timeout_s: float) -> bool:
        return await self.cluster.probe(self.instance, self.role, self.peer_id, timeout_s)

    def resumed_by(self, presented: bytes | None) -> bool:
        """Only its own instance knows its secret (``Cluster.probe`` asks there)."""
        return False
