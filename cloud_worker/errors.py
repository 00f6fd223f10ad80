"""The worker's error tree; on the wire each becomes a ``StreamFailed`` with an ``ErrorCode``.

::

    WorkerError(TandemError)
    ├── BackendError          the backend failed mid-generation (retryable elsewhere)
    ├── BackendUnavailable    the model is not loaded, the wait queue is full, the engine
    │                         does not answer (or answers 429/503)
    └── Draining              this worker takes no new work (spot preemption)

    UpstreamContextTooLong(inference.ContextTooLong): the engine's own "prompt too long"
"""

from __future__ import annotations

from inference import ContextTooLong, InferenceError
from shared.errors import TandemError

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "Draining",
    "UpstreamContextTooLong",
    "WorkerError",
]


class WorkerError(TandemError):
    """Base of the worker's errors."""


class BackendError(WorkerError):
    """Generation failed inside the backend."""


class BackendUnavailable(WorkerError):
    """The backend cannot take this request now."""


class Draining(WorkerError):
    """The worker is shutting down and takes no new streams."""


class UpstreamContextTooLong(ContextTooLong):
    """The engine says the prompt does not fit its context (its own words, its limits)."""

    def __init__(self, message: str) -> None:
        InferenceError.__init__(self, message)
        self.prompt_tokens = 0
        self.n_ctx = 0
