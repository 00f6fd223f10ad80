"""Which worker gets an edge's offer: pure, so it is tested without a server."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from signaling.registry.base import WorkerInfo

__all__ = ["choose_worker"]


def _serves(worker: WorkerInfo, model: str) -> bool:
    return not model or model in worker.models


def _load_key(worker: WorkerInfo) -> tuple[float, int, str]:
    # Ratio first so a big worker at 4/16 beats a small one at 1/2; then raw count and
    # id so that the choice is deterministic (tests and logs can predict it).
    return (worker.active / max(worker.capacity, 1), worker.active, worker.peer_id)


def choose_worker(
    workers: Iterable[WorkerInfo], model: str, avoid: Collection[str] = ()
) -> WorkerInfo | None:
    """The least loaded non-draining worker that serves ``model`` ("" = any model), other
    than those in ``avoid`` (an edge's standby must be another worker than its primary).

    A worker at or over capacity is still chosen when it is the only one: it knows best
    whether it can queue the request or must refuse it, and refusing here would turn a
    short wait into a failure.
    """
    eligible = [
        w for w in workers if not w.draining and _serves(w, model) and w.peer_id not in avoid
    ]
    if not eligible:
        return None
    return min(eligible, key=_load_key)
