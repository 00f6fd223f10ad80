"""``KvCache`` in a real ``LlamaRunner``: conversations taking turns get their history
back from kept KV cells instead of re-reading it; the budget bounds what is kept."""

from __future__ import annotations

import uuid
from contextlib import aclosing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference import LlamaRunner, RunnerConfig
from inference.kvcache import KvCache, common_prefix
from shared import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.model import model_path

QUESTIONS = ("Tell me about Mars.", "What about its moons?", "And water?")


@given(st.lists(st.integers(0, 3)), st.lists(st.integers(0, 3)))
def test_common_prefix(a: list[int], b: list[int]) -> None:
    n = common_prefix(a, b)
    assert a[:n] == b[:n]
    assert n == min(len(a), len(b)) or a[n] != b[n]


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        KvCache(0)
    with pytest.raises(ValueError):
        RunnerConfig(model_path=model_path(), kv_cache_bytes=-1)


async def answer(runner: LlamaRunner, history: list[ChatMessage]) -> tuple[str, StreamEnd]:
    request = GenerateRequest(
        request_id=uuid.uuid4().hex,
        messages=tuple(history),
        params=SamplingParams(max_tokens=12, temperature=0),
    )
    parts: list[str] = []
    end: StreamEnd | None = None
    async with aclosing(runner.stream(request)) as events:
        async for event in events:
            if isinstance(event, TokenChunk):
                parts.append(event.text)
            else:
                end = event
    assert end is not None
    return "".join(parts), end


async def take_turns(runner: LlamaRunner) -> list[StreamEnd]:
    """Three conversations, three turns each, interleaved."""
    histories = [
        [ChatMessage(role="system", content=f"You are assistant number {c}.")] for c in range(3)
    ]
    ends = []
    for question in QUESTIONS:
        for history in histories:
            history.append(ChatMessage(role="user", content=question))
            text, end = await answer(runner, history)
            history.append(ChatMessage(role="assistant", content=text))
            ends.append(end)
    return ends


@pytest.mark.asyncio
async def test_interleaved_conversations_reuse_their_kept_state() -> None:
    runner = LlamaRunner(RunnerConfig(model_path=model_path(), kv_cache_bytes=64 << 20))
    await runner.load()
    try:
        ends = await take_turns(runner)
        # Every conversation's second and third turn start from its own earlier cells:
        # at least the history up to the previous answer is not evaluated again.
        assert runner.kv_restored_tokens > sum(e.prompt_tokens for e in ends[:3])
        assert all(e.completion_tokens > 0 for e in ends)
    finally:
        await runner.aclose()


@pytest.mark.asyncio
async def test_off_by_default_and_nothing_kept_past_the_budget() -> None:
    off = LlamaRunner(RunnerConfig(model_path=model_path()))
    tiny = LlamaRunner(RunnerConfig(model_path=model_path(), kv_cache_bytes=1024))
    for runner in (off, tiny):
        await runner.load()
    try:
        for runner in (off, tiny):
            await take_turns(runner)
            assert runner.kv_restored_tokens == 0
        assert tiny._kv is not None and len(tiny._kv) == 0 and tiny._kv.used_bytes == 0
    finally:
        for runner in (off, tiny):
            await runner.aclose()
