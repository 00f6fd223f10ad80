from __future__ import annotations

from signaling.matchmaking import choose_worker
from signaling.registry.base import WorkerInfo


def worker(
    peer_id: str,
    active: int = 0,
    capacity: int = 4,
    *,
    models: tuple[str, ...] = ("m",),
    draining: bool = False,
) -> WorkerInfo:
    return WorkerInfo(
        peer_id=peer_id, models=models, capacity=capacity, active=active, draining=draining
    )


def test_least_loaded_ratio_wins_over_raw_count() -> None:
    big = worker("big", active=4, capacity=16)  # 25 %
    small = worker("small", active=1, capacity=2)  # 50 %
    assert choose_worker([small, big], "m") == big


def test_ties_broken_by_active_then_peer_id() -> None:
    assert choose_worker([worker("b", 2, 4), worker("a", 1, 2)], "m") == worker("a", 1, 2)
    assert choose_worker([worker("b"), worker("a")], "m") == worker("a")


def test_draining_workers_are_never_chosen() -> None:
    idle_draining = worker("idle", draining=True)
    busy = worker("busy", active=3)
    assert choose_worker([idle_draining, busy], "m") == busy
    assert choose_worker([idle_draining], "m") is None


def test_model_filter() -> None:
    llama = worker("llama", models=("llama-70b",))
    qwen = worker("qwen", models=("qwen-32b", "qwen-7b"), active=3)
    assert choose_worker([llama, qwen], "qwen-7b") == qwen
    assert choose_worker([llama, qwen], "mistral") is None


def test_empty_model_means_any() -> None:
    llama = worker("llama", models=("llama-70b",), active=2)
    qwen = worker("qwen", models=("qwen-32b",), active=1)
    assert choose_worker([llama, qwen], "") == qwen


def test_full_worker_is_chosen_only_when_nothing_else_is() -> None:
    full = worker("full", active=4, capacity=4)
    over = worker("over", active=9, capacity=4)
    assert choose_worker([over, full], "m") == full
    assert choose_worker([over, full, worker("free", active=3)], "m") == worker("free", active=3)


def test_no_workers() -> None:
    assert choose_worker([], "") is None
