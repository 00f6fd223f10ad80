from __future__ import annotations

from signaling.registry.base import WorkerInfo
from signaling.registry.memory import MemoryRegistry


async def test_add_get_workers() -> None:
    registry = MemoryRegistry()
    a = WorkerInfo(peer_id="a", models=("m",), capacity=2)
    b = WorkerInfo(peer_id="b", models=("m", "n"), capacity=8)
    await registry.add(a)
    await registry.add(b)
    assert await registry.get("a") == a
    assert await registry.get("missing") is None
    assert sorted(await registry.workers(), key=lambda w: w.peer_id) == [a, b]


async def test_add_replaces_same_peer() -> None:
    registry = MemoryRegistry()
    await registry.add(WorkerInfo(peer_id="a", models=("old",), capacity=1, active=1))
    fresh = WorkerInfo(peer_id="a", models=("new",), capacity=4)
    await registry.add(fresh)
    assert await registry.workers() == [fresh]


async def test_update_load() -> None:
    registry = MemoryRegistry()
    await registry.add(WorkerInfo(peer_id="a", models=("m",), capacity=4))
    updated = await registry.update_load("a", 3, True)
    assert updated == WorkerInfo(peer_id="a", models=("m",), capacity=4, active=3, draining=True)
    assert await registry.get("a") == updated


async def test_update_load_of_unknown_worker_returns_none() -> None:
    registry = MemoryRegistry()
    assert await registry.update_load("ghost", 1, False) is None
    assert await registry.workers() == []


async def test_remove_is_idempotent() -> None:
    registry = MemoryRegistry()
    await registry.add(WorkerInfo(peer_id="a", models=("m",), capacity=1))
    await registry.remove("a")
    await registry.remove("a")
    assert await registry.get("a") is None
    assert await registry.workers() == []


async def test_instances_do_not_share_state() -> None:
    first, second = MemoryRegistry(), MemoryRegistry()
    await first.add(WorkerInfo(peer_id="a", models=("m",), capacity=1))
    assert await second.workers() == []
