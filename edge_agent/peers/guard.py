"""What a worker may send on one stream, checked as each frame arrives.

A worker is trusted to generate, not with the edge's memory. Its chunks wait in a
per-stream inbox (bounded in chunks: when full they merge), and a non-streamed answer
accumulates in full, so both are bounded here, in the link's reader, before anything is
kept:

* tokens: at most the request's ``max_tokens``; more is a protocol violation. A request
  with no ``max_tokens`` (or more than ``--max-stream-tokens``) takes at most
  ``--max-stream-tokens``: the worker cannot know that cap, so reaching it is no
  violation; the stream ends there (``length``) and the worker is told to stop;
* text: at most ``--max-chars-per-token`` characters per token, on average over the
  stream (no vocabulary has longer tokens; the average absorbs a chunk that carries text
  whose tokens came earlier);
* the ``StreamEnd``: its ``completion_tokens`` must be the tokens the chunks carried
  (both backends guarantee it), its ``prompt_tokens`` no more than the request could
  tokenize to (a token is at least a byte, plus the chat template's own), since the
  day's cloud budget is charged with it.

A violation raises ``ProtocolViolation``: the peer drops the link (only that worker's),
and every stream on it fails over (``TransportClosed`` is retryable).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.codec import encode
from shared.messages import GenerateRequest, StreamEnd, StreamFailed, TokenChunk

__all__ = ["PROMPT_TEMPLATE_TOKENS", "ProtocolViolation", "StreamBounds", "StreamGuard"]

PROMPT_TEMPLATE_TOKENS = 4096
"""Tokens a chat template may add to a prompt beyond its bytes (role markers, a default
system prompt): generous, since it only has to catch a lie, not measure."""


class ProtocolViolation(Exception):
    """The worker sent what the protocol forbids; its link must be dropped."""


@dataclass(frozen=True)
class StreamBounds:
    """``--max-stream-tokens`` and ``--max-chars-per-token``."""

    max_stream_tokens: int = 65_536
    max_chars_per_token: int = 128


class StreamGuard:
    """Counts one stream's tokens and text against its bounds."""

    def __init__(self, request: GenerateRequest, bounds: StreamBounds) -> None:
        asked = request.params.max_tokens
        self.strict = asked is not None and asked <= bounds.max_stream_tokens
        """Whether the token limit is the request's own (the worker knows it)."""
        self.limit = asked if asked is not None and self.strict else bounds.max_stream_tokens
        self._chars_per_token = bounds.max_chars_per_token
        self._max_prompt_tokens = len(encode(request)) + PROMPT_TEMPLATE_TOKENS
        self.tokens = 0
        self.chars = 0

    def admit(self, item: TokenChunk | StreamEnd | StreamFailed) -> bool:
        """Whether to keep ``item``: ``False`` when it would take the stream past the
        edge's own cap (end the stream there); ``ProtocolViolation`` if it breaks the
        protocol."""
        if isinstance(item, TokenChunk):
            tokens = self.tokens + item.n_tokens
            chars = self.chars + len(item.text)
            if tokens > self.limit:
                if self.strict:
                    raise ProtocolViolation(
                        f"{tokens} tokens on a stream of max_tokens {self.limit}"
                    )
                return False
            if chars > self._chars_per_token * max(tokens, 1):
                raise ProtocolViolation(
                    f"{chars} characters for {tokens} tokens (at most "
                    f"{self._chars_per_token} a token, --max-chars-per-token)"
                )
            self.tokens, self.chars = tokens, chars
        elif isinstance(item, StreamEnd):
            if item.completion_tokens != self.tokens:
                raise ProtocolViolation(
                    f"the end counts {item.completion_tokens} completion tokens, the chunks "
                    f"carried {self.tokens}"
                )
            if item.prompt_tokens > self._max_prompt_tokens:
                raise ProtocolViolation(
                    f"the end counts {item.prompt_tokens} prompt tokens for a request that "
                    f"can make at most {self._max_prompt_tokens}"
                )
        return True
