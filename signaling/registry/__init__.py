"""Where signaling keeps the workers it can hand offers to.

One interface (``Registry``), several stores: ``MemoryRegistry`` for a single server,
a Redis one later for several servers sharing workers.
"""

from signaling.registry.base import Registry, WorkerInfo
from signaling.registry.memory import MemoryRegistry

__all__ = ["MemoryRegistry", "Registry", "WorkerInfo"]
