"""Where signaling keeps the workers it can hand offers to.

One interface (``Registry``), two stores: ``MemoryRegistry`` for a single server,
``registry.redis.RedisRegistry`` for several servers sharing workers (``--redis-url``;
not imported here, so that one server never loads the redis client).
"""

from signaling.registry.base import Registry, WorkerInfo
from signaling.registry.memory import MemoryRegistry

__all__ = ["MemoryRegistry", "Registry", "WorkerInfo"]
