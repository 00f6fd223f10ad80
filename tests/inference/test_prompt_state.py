"""The prompt state a ``PrefillCheck`` reads, on the real bundled model.

The router's second look is only as good as the promise that it changes nothing else:
a check that keeps the request local must leave the answer exactly as it would have
been, one that hands it on must generate nothing and leave the runner as it found it,
and the state it reads must be the one the lab fitted its head on
(``LlamaRunner.prompt_state``), whatever the KV cache held before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from inference import HandedOn, LlamaRunner, PrefillCheck, RunnerConfig, bundled_model_path
from shared import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.wait import eventually

MODEL = bundled_model_path()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="the bundled model is not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]

QUESTION = (ChatMessage(role="user", content="Write a haiku about the sea."),)


def _request(messages: tuple[ChatMessage, ...] = QUESTION, rid: str = "r") -> GenerateRequest:
    return GenerateRequest(
        request_id=rid, messages=messages, params=SamplingParams(temperature=0, max_tokens=16)
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runner() -> AsyncIterator[LlamaRunner]:
    assert MODEL is not None
    runner = LlamaRunner(RunnerConfig(MODEL, n_ctx=1024, n_threads=1))
    await runner.load()
    yield runner
    await runner.aclose()


async def _answer(
    runner: LlamaRunner, request: GenerateRequest, check: PrefillCheck | None = None
) -> tuple[str, StreamEnd]:
    text = ""
    async for event in runner.stream(request, check=check):
        if isinstance(event, TokenChunk):
            text += event.text
        else:
            return text, event
    raise AssertionError("no StreamEnd")


class Recorder:
    """A check that keeps (or hands on) every request and records what it saw."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.states: list[npt.NDArray[np.float32]] = []

    def __call__(self, state: npt.NDArray[np.float32]) -> bool:
        self.states.append(state.copy())
        return self.keep


async def test_a_check_that_keeps_changes_nothing_and_sees_the_labs_state(
    runner: LlamaRunner,
) -> None:
    plain, plain_end = await _answer(runner, _request())
    keep = Recorder(keep=True)
    kept, kept_end = await _answer(runner, _request(), keep)
    assert plain and kept == plain
    assert kept_end.completion_tokens == plain_end.completion_tokens
    assert kept_end.prompt_tokens == plain_end.prompt_tokens
    [state] = keep.states
    assert state.shape == (runner.n_embd,) and np.isfinite(state).all()
    assert np.array_equal(await runner.prompt_state(_request()), state)


async def test_a_check_that_hands_on_generates_nothing_and_leaves_the_runner_as_it_was(
    runner: LlamaRunner,
) -> None:
    before, _ = await _answer(runner, _request())
    generated = runner.generated_tokens
    hand_on = Recorder(keep=False)
    events = []
    with pytest.raises(HandedOn):
        async for event in runner.stream(_request(), check=hand_on):
            events.append(event)
    assert events == [] and len(hand_on.states) == 1
    assert runner.generated_tokens == generated
    await eventually(lambda: runner.busy == 0)  # the slot is free again
    after, _ = await _answer(runner, _request())  # the same prompt, now fully evaluated
    assert after == before


async def test_the_state_is_the_same_whatever_prefix_the_context_held() -> None:
    """A follow-up turn whose history the KV cache brings back (another conversation ran
    in between) reads the same state as one evaluated from nothing."""
    assert MODEL is not None
    history = (
        *QUESTION,
        ChatMessage(role="assistant", content="Waves fold into foam."),
        ChatMessage(role="user", content="Now one about the mountains."),
    )
    cached = LlamaRunner(RunnerConfig(MODEL, n_ctx=1024, n_threads=1, kv_cache_bytes=1 << 26))
    fresh = LlamaRunner(RunnerConfig(MODEL, n_ctx=1024, n_threads=1))
    await cached.load()
    await fresh.load()
    try:
        await _answer(cached, _request())
        other = (ChatMessage(role="user", content="List three colours."),)
        await _answer(cached, _request(other, "other"))
        seen = Recorder(keep=True)
        await _answer(cached, _request(history, "follow-up"), seen)
        assert cached.kv_restored_tokens > 0  # the prefix really came from the cache
        expected = await fresh.prompt_state(_request(history))
        np.testing.assert_allclose(seen.states[0], expected, rtol=1e-3, atol=1e-3)
    finally:
        await cached.aclose()
        await fresh.aclose()
