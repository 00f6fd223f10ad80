"""Backends generate tokens for the worker: llama.cpp in-process (more to come)."""

from cloud_worker.backends.base import Backend, BackendEvent

__all__ = ["Backend", "BackendEvent"]
