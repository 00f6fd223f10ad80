"""How a request sent to signaling ends: its reply, ``SignalingRefused`` or
``SignalingUnavailable``.

Two kinds of request wait on signaling: an offer (for its ``Answer``,
``link.signaling_client``) and a relay request (for its ``RelayAccept``,
``link.signaling_relays``). Both park one future per session id and settle it from
the frame that answers it, so the errors they end with and the settling live here,
apart from either.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from shared.errors import TandemError
from shared.messages import Answer, ErrorCode, Message, RelayAccept, SignalError

__all__ = ["SignalingRefused", "SignalingUnavailable", "settle"]

R = TypeVar("R", Answer, RelayAccept)


class SignalingUnavailable(TandemError):
    """Not connected to signaling, or it did not answer in time."""


class SignalingRefused(TandemError):
    """Signaling answered an offer with an error (e.g. no worker serves the model)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def settle(pending: dict[str, asyncio.Future[R]], reply: type[R], message: Message) -> bool:
    """Resolve the request ``message`` answers, if it answers one: with the ``reply``, or
    with ``SignalingRefused`` for a ``SignalError`` naming the same session."""
    if not isinstance(message, reply | SignalError):
        return False
    future = pending.get(message.session_id or "")
    if future is None:
        return False
    if not future.done():
        if isinstance(message, SignalError):
            future.set_exception(SignalingRefused(message.code, message.message))
        else:
            future.set_result(message)
    return True
