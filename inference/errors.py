"""Errors of the inference library; each process maps them to its own tree.

::

    InferenceError(TandemError)
    ├── ModelLoadError      the GGUF file is missing or llama.cpp refused it
    ├── ContextTooLong      prompt does not fit the model's context window
    ├── RunnerOverloaded    the bounded wait queue is full
    └── HandedOn            a prefill check sent the request elsewhere, before any token
"""

from __future__ import annotations

from shared.errors import TandemError

__all__ = ["ContextTooLong", "HandedOn", "InferenceError", "ModelLoadError", "RunnerOverloaded"]


class InferenceError(TandemError):
    """Base of inference failures."""


class ModelLoadError(InferenceError):
    """The model could not be loaded."""


class ContextTooLong(InferenceError):
    """The prompt leaves no room to generate within the context window."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"prompt is {prompt_tokens} tokens; this model's context window is {n_ctx} tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class RunnerOverloaded(InferenceError):
    """More requests are waiting than the configured queue allows."""


class HandedOn(InferenceError):
    """The request's ``PrefillCheck`` said to serve it elsewhere: nothing was generated."""
