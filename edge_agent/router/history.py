"""A conversation's last ask on its own: the second half of "history, done right".

A conversation's difficulty is its last ask, with the history as context. The features
and the token head read the history (a follow-up in a hard conversation inherits its
difficulty, a short "now translate all that" after a long answer is long output), and
out of writer that made them send easy follow-ups after hard turns to the cloud. So a
conversation is also scored as its last ask alone (the system turn kept), and where a
second look follows, its first half takes the lower of the two scores: the look itself
reads the whole conversation through the model's own state, and still escalates what the
history makes hard. Leave-one-writer-out, 20 writers (docs/router.md, round 12): local
kept 0.762 → 0.771 at the same cloud recall, 148 of 175 easy follow-ups kept (134
before), 244 of 260 hard ones sent (248 before).
"""

from __future__ import annotations

from shared.messages import GenerateRequest

__all__ = ["SYSTEM_ROLES", "last_ask_request"]

SYSTEM_ROLES = frozenset({"system", "developer"})
"""The roles of an app's instructions rather than of the conversation."""


def last_ask_request(request: GenerateRequest) -> GenerateRequest | None:
    """``request`` as its last user message alone, after the leading system turn if it
    has one; ``None`` unless it is a conversation of more than one user turn."""
    messages = request.messages
    if messages is None or sum(m.role == "user" for m in messages) < 2:
        return None
    last = max(i for i, m in enumerate(messages) if m.role == "user")
    lead = messages[:1] if messages[0].role in SYSTEM_ROLES else ()
    return request.model_copy(update={"messages": (*lead, messages[last])})
