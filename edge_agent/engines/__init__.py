"""Engines turn a ``GenerateRequest`` into a token stream: locally or on a cloud worker."""

from edge_agent.engines.base import Engine, EngineEvent

__all__ = ["Engine", "EngineEvent"]
