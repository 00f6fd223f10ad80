"""The edge agent's HTTP API: OpenAI- and Ollama-compatible routes over the engines."""

from edge_agent.api.app import ApiDeps, build_api

__all__ = ["ApiDeps", "build_api"]
