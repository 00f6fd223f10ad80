"""``StreamGuard``: what a worker may send on one stream (pure; the attacks on a real
link are in ``tests/security/test_hostile_worker.py``)."""

from __future__ import annotations

import pytest

from edge_agent.peers.guard import ProtocolViolation, StreamBounds, StreamGuard
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk

BOUNDS = StreamBounds(max_stream_tokens=100, max_chars_per_token=8)


def request(max_tokens: int | None) -> GenerateRequest:
    return GenerateRequest(
        request_id="r",
        messages=(ChatMessage(role="user", content="hi"),),
        params=SamplingParams(max_tokens=max_tokens),
    )


def chunk(text: str, n: int) -> TokenChunk:
    return TokenChunk(request_id="r", text=text, n_tokens=n)


def end(prompt: int, completion: int) -> StreamEnd:
    return StreamEnd(
        request_id="r", finish_reason="stop", prompt_tokens=prompt, completion_tokens=completion
    )


def test_an_honest_stream_passes() -> None:
    guard = StreamGuard(request(10), BOUNDS)
    assert guard.admit(chunk("Hello", 2))
    assert guard.admit(chunk("", 3))  # tokens whose text is held back
    assert guard.admit(chunk("held back", 0))  # and the text, later
    assert guard.admit(end(prompt=20, completion=5))


def test_more_tokens_than_max_tokens_is_a_violation() -> None:
    guard = StreamGuard(request(10), BOUNDS)
    assert guard.admit(chunk("a", 10))
    with pytest.raises(ProtocolViolation, match="max_tokens 10"):
        guard.admit(chunk("b", 1))


def test_more_text_than_tokens_can_carry_is_a_violation() -> None:
    guard = StreamGuard(request(10), BOUNDS)
    with pytest.raises(ProtocolViolation, match="characters"):
        guard.admit(chunk("x" * 17, 2))


@pytest.mark.parametrize(("prompt", "completion"), [(20, 4), (20, 6), (10**9, 5)])
def test_an_end_that_disagrees_is_a_violation(prompt: int, completion: int) -> None:
    guard = StreamGuard(request(10), BOUNDS)
    guard.admit(chunk("Hello", 5))
    with pytest.raises(ProtocolViolation, match="the end counts"):
        guard.admit(end(prompt, completion))


@pytest.mark.parametrize("max_tokens", [None, 1000])
def test_the_edges_own_cap_ends_the_stream_without_blame(max_tokens: int | None) -> None:
    guard = StreamGuard(request(max_tokens), BOUNDS)
    assert not guard.strict
    assert guard.admit(chunk("a" * 8, 100))
    assert not guard.admit(chunk("b", 1))
    assert guard.tokens == 100
