"""Whether a request fits the link to a worker, checked before it is served anywhere.

A worker puts a fragmented message back together up to the protocol's limit
(``shared.codec.MAX_MESSAGE_BYTES``) and drops the link on anything larger, failing every
other stream on it. The HTTP body limit cannot promise that on its own: a body encodes
to a different size (JSON escapes shrink, defaults the body left out and the protocol's
field names grow it), so the built request itself is measured. It is refused whatever
the route (413), so that whether a request is accepted never depends on where the
router sends it, nor on a later failover to the cloud.
"""

from __future__ import annotations

from edge_agent.errors import RequestTooLarge
from shared.codec import MAX_MESSAGE_BYTES, encode
from shared.messages import GenerateRequest

__all__ = ["WIRE_HEADROOM_BYTES", "check_fits", "wire_limit"]

WIRE_HEADROOM_BYTES = 4096
"""Room kept for what the request gains on its way to a worker: the attempt suffix of
its id, the cloud model's name (``--cloud-model``, at most 1024 characters)."""


def wire_limit() -> int:
    """The largest encoded request the edge accepts, in bytes."""
    return MAX_MESSAGE_BYTES - WIRE_HEADROOM_BYTES


def check_fits(request: GenerateRequest) -> None:
    """``RequestTooLarge`` unless ``request`` fits the link with its headroom."""
    size = len(encode(request))
    if size > wire_limit():
        raise RequestTooLarge(
            f"This request is {size} bytes as sent to a cloud worker; the limit is "
            f"{wire_limit()} (the link's message limit less {WIRE_HEADROOM_BYTES} bytes). "
            "Shorten the prompt or the stop list."
        )
