"""Token log-probabilities in OpenAI's two shapes: chat's ``logprobs.content`` and the
legacy completions' parallel lists.

The engines report them per token (``TokenChunk.logprobs``, the raw model distribution,
before temperature, penalties or a grammar), when the request asked; here they are only
reshaped. Tokens a stop string cut from the text are still listed: they were generated.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from shared.messages import TokenLogprob

__all__ = ["ChatLogprobs", "CompletionLogprobs", "chat_logprobs", "completion_logprobs"]


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class LogprobContent(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[LogprobContent] | None
    refusal: None = None


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def chat_logprobs(scored: Sequence[TokenLogprob]) -> ChatLogprobs | None:
    """``None`` when the request did not ask (no token carries any)."""
    if not scored:
        return None
    return ChatLogprobs(
        content=[
            LogprobContent(
                token=s.token,
                logprob=s.logprob,
                bytes=_bytes(s.token),
                top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=_bytes(t)) for t, lp in s.top],
            )
            for s in scored
        ]
    )


def completion_logprobs(
    scored: Sequence[TokenLogprob], offset: int = 0
) -> CompletionLogprobs | None:
    """``offset``: characters of the completion before the first of ``scored``."""
    if not scored:
        return None
    offsets: list[int] = []
    for s in scored:
        offsets.append(offset)
        offset += len(s.token)
    return CompletionLogprobs(
        tokens=[s.token for s in scored],
        token_logprobs=[s.logprob for s in scored],
        top_logprobs=[dict(s.top) for s in scored],
        text_offset=offsets,
    )
