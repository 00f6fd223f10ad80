"""The structured-output policy: JSON schemas and tool calls go to the cloud on ``auto``.

A request whose answer must match a schema (``response_format``, Ollama ``format``) or be
a tool call (``tools``, which the edge turns into a schema) is harder than its prompt
reads: the grammar guarantees the *shape* on any model, but choosing the right tool and
filling its arguments with sensible values is where a 135M-parameter model fails (it
returns valid JSON with made-up values). So, like a prompt the local context cannot hold,
such a request goes to the cloud when the cloud may be used at all; a forced route, an
unreachable cloud and a spent budget still win (the local model then answers, shape
guaranteed). ``--no-structured-to-cloud`` turns the policy off.

Kept apart from ``policy.py`` so that it stays one small pure rule.
"""

from __future__ import annotations

from edge_agent.router.features import PromptFeatures

__all__ = ["wants_cloud_for_structure"]


def wants_cloud_for_structure(features: PromptFeatures, *, enabled: bool) -> bool:
    """True when the policy sends this request to the cloud (``Reason.STRUCTURED_OUTPUT``)."""
    return enabled and features.structured
