"""The worker's error tree; on the wire each becomes a ``StreamFailed`` with an ``ErrorCode``.

::

    WorkerError(TandemError)
    ├── BackendError          the backend failed mid-generation (retryable elsewhere)
    ├── BackendUnavailable    the model is not loaded, or the wait queue is full
    └── Draining              this worker takes no new work (spot preemption)
"""

from __future__ import annotations

from shared.errors import TandemError

__all__ = ["BackendError", "BackendUnavailable", "Draining", "WorkerError"]


class WorkerError(TandemError):
    """Base of the worker's errors."""


class BackendError(WorkerError):
    """Generation failed inside the backend."""


class BackendUnavailable(WorkerError):
    """The backend cannot take this request now."""


class Draining(WorkerError):
    """The worker is shutting down and takes no new streams."""
