"""LlamaRunner on the real bundled model (SmolLM2-135M Q4_1), plus its pure stop-string helpers.

One module-scoped runner serves most tests; those needing another configuration build
their own (loading the 98 MB model takes about a second).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from inference import (
    ContextTooLong,
    InferenceError,
    LlamaRunner,
    ModelLoadError,
    RunnerConfig,
    RunnerOverloaded,
    bundled_model_path,
)
from inference.stops import StopScanner, find_stop, holdback
from shared import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.wait import eventually

MODEL = bundled_model_path()
needs_model = pytest.mark.skipif(
    MODEL is None, reason="the bundled model (extra 'bundled') is not installed"
)
module_loop = pytest.mark.asyncio(loop_scope="module")

# ------------------------------------------------------------------ find_stop / holdback


def test_find_stop_single() -> None:
    assert find_stop("hello world", ("wor",)) == 6
    assert find_stop("hello world", ("hello",)) == 0


def test_find_stop_earliest_of_several() -> None:
    assert find_stop("hello world", ("world", "lo", "xyz")) == 3
    assert find_stop("a.b!c", ("!", ".")) == 1


def test_find_stop_none() -> None:
    assert find_stop("hello world", ("xyz",)) is None
    assert find_stop("hello world", ()) is None
    assert find_stop("", ("x",)) is None


def test_find_stop_ignores_empty_stop_strings() -> None:
    assert find_stop("hello", ("",)) is None
    assert find_stop("hello", ("", "l")) == 2


def test_holdback_partial_stop_at_the_end() -> None:
    assert holdback("hello wo", ("world",)) == 2
    assert holdback("answer: #", ("###",)) == 1
    assert holdback("answer: ##", ("###",)) == 2


def test_holdback_nothing_to_hold() -> None:
    assert holdback("hello", ("world",)) == 0
    assert holdback("hello", ()) == 0
    assert holdback("", ("world",)) == 0
    assert holdback("hello", ("",)) == 0


def test_holdback_longest_of_several() -> None:
    assert holdback("the en", ("end of", "n!")) == 2
    assert holdback("the en", ("n!", "end of")) == 2
    assert holdback("ab", ("b", "abc")) == 2


def test_holdback_stop_longer_than_text() -> None:
    assert holdback("wo", ("world",)) == 2
    assert holdback("x", ("world",)) == 0


def stream_through_stops(pieces: list[str], stops: tuple[str, ...]) -> tuple[list[str], bool]:
    """What the runner emits for these detokenised pieces: the scanner it uses."""
    scanner = StopScanner(stops)
    emitted = [scanner.feed(piece) for piece in pieces]
    emitted.append(scanner.finish())
    return [e for e in emitted if e], scanner.stopped


def test_stop_string_spanning_chunks() -> None:
    emitted, stopped = stream_through_stops(["Hel", "lo #", "#", "# world"], ("###",))
    assert stopped
    assert "".join(emitted) == "Hello "
    assert emitted == ["Hel", "lo "]  # the '#'s were held back, never sent


def test_partial_stop_that_does_not_complete_is_released() -> None:
    emitted, stopped = stream_through_stops(["a #", "#b", " c"], ("###",))
    assert not stopped
    assert "".join(emitted) == "a ##b c"


@pytest.mark.fuzz
@given(
    text=st.text(alphabet="ab#. ", max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
    stops=st.lists(st.text(alphabet="ab#.", min_size=1, max_size=4), max_size=3).map(tuple),
)
def test_fuzz_stops_never_leak(text: str, cuts: list[int], stops: tuple[str, ...]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    emitted, stopped = stream_through_stops(pieces, stops)
    first = find_stop(text, stops)
    expected = text if first is None else text[:first]
    assert "".join(emitted) == expected
    assert stopped == (first is not None)


# ------------------------------------------------------------------------ the real model


def chat(request_id: str, content: str, **params: object) -> GenerateRequest:
    return GenerateRequest(
        request_id=request_id,
        messages=(ChatMessage(role="user", content=content),),
        params=SamplingParams(**params),  # type: ignore[arg-type]
    )


def completion(request_id: str, prompt: str, **params: object) -> GenerateRequest:
    return GenerateRequest(
        request_id=request_id,
        prompt=prompt,
        params=SamplingParams(**params),  # type: ignore[arg-type]
    )


async def collect(
    runner: LlamaRunner, request: GenerateRequest
) -> tuple[list[TokenChunk], StreamEnd]:
    chunks: list[TokenChunk] = []
    end: StreamEnd | None = None
    async with aclosing(runner.stream(request)) as events:
        async for event in events:
            assert end is None, "nothing may follow StreamEnd"
            assert event.request_id == request.request_id
            if isinstance(event, TokenChunk):
                chunks.append(event)
            else:
                assert isinstance(event, StreamEnd)
                end = event
    assert end is not None, "the stream must end with StreamEnd"
    return chunks, end


def text_of(chunks: list[TokenChunk]) -> str:
    return "".join(c.text for c in chunks)


async def wait_idle(runner: LlamaRunner) -> None:
    await eventually(lambda: runner.busy == 0, what="the runner idle")


async def load_runner(**config: object) -> LlamaRunner:
    assert MODEL is not None
    runner = LlamaRunner(RunnerConfig(model_path=MODEL, **config))  # type: ignore[arg-type]
    await runner.load()
    return runner


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner() -> AsyncIterator[LlamaRunner]:
    loaded = await load_runner(n_ctx=1024)
    yield loaded
    await loaded.aclose()


# Few distinct prompts: llama-cpp-python reuses the KV cache for a repeated prompt prefix.
LONG = "Write a long story about a dragon who learns to bake bread in a small village."
SHORT = "What is the capital of France?"
PROMPT = "The capital of France is"


@needs_model
@module_loop
async def test_load_makes_it_ready(runner: LlamaRunner) -> None:
    assert runner.ready
    assert runner.busy == 0
    assert runner.n_ctx == 1024
    assert runner.name == "SmolLM2-135M-Instruct.Q4_1"


@needs_model
@module_loop
async def test_chat_until_length(runner: LlamaRunner) -> None:
    request = chat("chat-1", SHORT, temperature=0.0, seed=7, max_tokens=8)
    chunks, end = await collect(runner, request)
    assert chunks
    assert text_of(chunks).strip()
    assert all(c.text for c in chunks)
    assert end.finish_reason == "length"
    assert end.completion_tokens == 8
    assert sum(c.n_tokens for c in chunks) == end.completion_tokens
    assert end.prompt_tokens > 0
    await wait_idle(runner)  # the slot is released just after StreamEnd is delivered


@needs_model
@module_loop
async def test_greedy_is_deterministic(runner: LlamaRunner) -> None:
    request = chat("det", SHORT, temperature=0.0, seed=1, max_tokens=16)
    first, _ = await collect(runner, request)
    await collect(runner, chat("other", LONG, temperature=0.9, max_tokens=5))
    second, _ = await collect(runner, request)
    assert text_of(first) == text_of(second)


@needs_model
@module_loop
async def test_completion_request(runner: LlamaRunner) -> None:
    request = completion("comp-1", PROMPT, temperature=0.0, max_tokens=6)
    chunks, end = await collect(runner, request)
    assert text_of(chunks).strip()
    assert end.completion_tokens == 6
    assert end.finish_reason == "length"
    assert end.prompt_tokens >= 4
    assert sum(c.n_tokens for c in chunks) == 6


@needs_model
@module_loop
async def test_prompt_tokens_count_the_chat_template(runner: LlamaRunner) -> None:
    _, as_prompt = await collect(runner, completion("p", PROMPT, temperature=0.0, max_tokens=1))
    _, as_chat = await collect(runner, chat("c", PROMPT, temperature=0.0, max_tokens=1))
    assert as_chat.completion_tokens == as_prompt.completion_tokens == 1
    assert as_chat.prompt_tokens > as_prompt.prompt_tokens  # role markers and template text


@needs_model
@module_loop
async def test_stop_string_ends_generation(runner: LlamaRunner) -> None:
    base = chat("free", LONG, temperature=0.0, seed=3, max_tokens=40)
    free_chunks, free_end = await collect(runner, base)
    full = text_of(free_chunks)
    assert free_end.completion_tokens == 40
    # A stop string from the middle of the greedy output, spanning several characters.
    start = len(full) // 2
    stop = full[start : start + 4]
    assert stop.strip(), f"picked a blank stop string from {full!r}"
    expected = full[: full.find(stop)]

    stopped = base.model_copy(
        update={
            "request_id": "stopped",
            "params": base.params.model_copy(update={"stop": ("@@never@@", stop)}),
        }
    )
    chunks, end = await collect(runner, stopped)
    out = text_of(chunks)
    assert out == expected
    assert stop not in out
    assert end.finish_reason == "stop"
    assert 0 < end.completion_tokens < 40


@needs_model
@module_loop
async def test_chunk_token_counts_add_up_with_a_stop_string(runner: LlamaRunner) -> None:
    base = chat("counts", LONG, temperature=0.0, seed=3, max_tokens=24)
    chunks, _ = await collect(runner, base)
    full = text_of(chunks)
    for start in range(3, len(full) - 4, 5):  # stops from several places: any mismatch fails
        stop = full[start : start + 4]
        if not stop.strip():
            continue
        params = base.params.model_copy(update={"stop": (stop,)})
        cut, end = await collect(runner, base.model_copy(update={"params": params}))
        assert end.finish_reason == "stop"
        assert sum(c.n_tokens for c in cut) == end.completion_tokens, f"stop {stop!r}"


@needs_model
@module_loop
async def test_stop_string_that_never_appears(runner: LlamaRunner) -> None:
    request = chat("nostop", LONG, temperature=0.0, max_tokens=12, stop=("\x00never\x00",))
    chunks, end = await collect(runner, request)
    assert end.finish_reason == "length"
    assert end.completion_tokens == 12
    assert sum(c.n_tokens for c in chunks) == 12


@needs_model
@module_loop
async def test_fast_consumer_gets_many_chunks(runner: LlamaRunner) -> None:
    chunks, end = await collect(runner, chat("stream", LONG, temperature=0.0, max_tokens=48))
    assert end.completion_tokens == 48
    assert len(chunks) > 1
    assert sum(c.n_tokens for c in chunks) == 48


@needs_model
@module_loop
async def test_slow_consumer_gets_coalesced_chunks(runner: LlamaRunner) -> None:
    request = chat("slow", LONG, temperature=0.0, max_tokens=32)
    chunks: list[TokenChunk] = []
    end: StreamEnd | None = None
    async with aclosing(runner.stream(request)) as events:
        async for event in events:
            if isinstance(event, StreamEnd):
                end = event
                continue
            chunks.append(event)
            if len(chunks) == 1:  # let the thread run ahead: it finishes while we wait
                await eventually(lambda: runner.busy == 0, what="generation finished")
    assert end is not None
    assert end.completion_tokens == 32
    assert sum(c.n_tokens for c in chunks) == 32
    assert any(c.n_tokens > 1 for c in chunks[1:])
    fast, _ = await collect(runner, request)
    assert text_of(chunks) == text_of(fast)


@needs_model
@module_loop
async def test_a_slow_reader_slows_generation_within_the_bound() -> None:
    bounded = await load_runner(n_ctx=1024, max_queued_chunks=2)
    try:
        request = chat("bounded", LONG, temperature=0.0, max_tokens=24)
        before = bounded.generated_tokens
        chunks: list[TokenChunk] = []
        end: StreamEnd | None = None
        stalls = 0
        async with aclosing(bounded.stream(request)) as events:
            async for event in events:
                if isinstance(event, StreamEnd):
                    end = event
                    continue
                chunks.append(event)
                # Read only once the thread can go no further (or has finished).
                await eventually(
                    lambda: bounded.stalled or bounded.busy == 0, what="the thread waiting"
                )
                assert bounded.backlog <= 2
                if bounded.stalled:
                    stalls += 1
                    if stalls == 1:  # (at the end it may wait to hand over its StreamEnd)
                        assert bounded.generated_tokens - before < 24, "it did not run ahead"
        assert stalls > 0, "the bound was never reached"
        assert end is not None and end.completion_tokens == 24
        assert sum(c.n_tokens for c in chunks) == 24
        assert any(c.n_tokens > 1 for c in chunks), "what waited was coalesced"
        fast, _ = await collect(bounded, request)
        assert text_of(chunks) == text_of(fast)
    finally:
        await bounded.aclose()


@needs_model
@module_loop
async def test_leaving_or_closing_while_the_thread_waits_frees_it() -> None:
    bounded = await load_runner(n_ctx=1024, max_queued_chunks=1)
    try:
        async with aclosing(
            bounded.stream(chat("gone", LONG, temperature=0.0, max_tokens=600))
        ) as events:
            assert isinstance(await anext(events), TokenChunk)
            await eventually(lambda: bounded.stalled, what="the thread waiting for the reader")
        await wait_idle(bounded)  # the reader left: the thread stopped waiting
        events = bounded.stream(chat("closed", LONG, temperature=0.0, max_tokens=600))
        try:
            assert isinstance(await anext(events), TokenChunk)
            await eventually(lambda: bounded.stalled, what="the thread waiting for the reader")
            await bounded.aclose()  # returns: the waiting thread was woken
            with pytest.raises((StopAsyncIteration, InferenceError)):
                for _ in range(10):  # what was queued, then the end
                    await asyncio.wait_for(anext(events), timeout=10.0)
        finally:
            await events.aclose()
    finally:
        await bounded.aclose()


def test_the_bound_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_queued_chunks"):
        RunnerConfig(model_path=tmp_path / "m.gguf", max_queued_chunks=0)


@needs_model
@module_loop
async def test_requests_wait_their_turn(runner: LlamaRunner) -> None:
    requests = [chat(f"q{i}", LONG, temperature=0.0, max_tokens=10) for i in range(3)]
    finished: list[str] = []

    async def run(request: GenerateRequest) -> tuple[list[TokenChunk], StreamEnd]:
        result = await collect(runner, request)
        finished.append(request.request_id)
        return result

    holder = chat("holder", LONG, temperature=0.0, max_tokens=600)
    async with aclosing(runner.stream(holder)) as held:
        await anext(held)  # generating: the three must wait
        tasks = [asyncio.create_task(run(r)) for r in requests]
        await eventually(lambda: runner.busy == 4, what="one generating, three waiting")
    results = await asyncio.gather(*tasks)
    assert finished == ["q0", "q1", "q2"], "served in the order they arrived"
    assert all(end.completion_tokens == 10 for _, end in results)
    assert text_of(results[0][0]) == text_of(results[2][0])
    await wait_idle(runner)


@needs_model
@module_loop
async def test_breaking_out_frees_the_runner(runner: LlamaRunner) -> None:
    before = runner.generated_tokens
    async with aclosing(
        runner.stream(chat("gone", LONG, temperature=0.0, max_tokens=600))
    ) as events:
        async for event in events:
            assert isinstance(event, TokenChunk)
            break
    await wait_idle(runner)
    assert runner.generated_tokens - before < 600, "the thread stopped, it did not run out"
    _, end = await collect(runner, chat("next", LONG, temperature=0.0, max_tokens=4))
    assert end.completion_tokens == 4


@needs_model
@module_loop
async def test_cancelled_waiter_leaves_the_queue(runner: LlamaRunner) -> None:
    async with aclosing(
        runner.stream(chat("holder", LONG, temperature=0.0, max_tokens=600))
    ) as held:
        await anext(held)
        waiter = asyncio.create_task(collect(runner, chat("waiter", LONG, max_tokens=2)))
        await eventually(lambda: runner.busy == 2, what="the waiter queued")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert runner.busy == 1
    await wait_idle(runner)


@needs_model
@module_loop
async def test_overloaded_when_no_waiting_allowed() -> None:
    runner = await load_runner(n_ctx=512, max_waiting=0)
    try:
        async with aclosing(
            runner.stream(chat("a", LONG, temperature=0.0, max_tokens=400))
        ) as first:
            assert isinstance(await anext(first), TokenChunk)
            assert runner.busy == 1
            with pytest.raises(RunnerOverloaded):
                await collect(runner, chat("b", "Hi", max_tokens=2))
            assert runner.busy == 1
        await wait_idle(runner)
        _, end = await collect(runner, chat("c", "Hi", temperature=0.0, max_tokens=2))
        assert end.completion_tokens == 2
    finally:
        await runner.aclose()


@needs_model
@module_loop
async def test_context_too_long() -> None:
    runner = await load_runner(n_ctx=128)
    try:
        with pytest.raises(ContextTooLong) as info:
            await collect(runner, completion("long", "word " * 300, max_tokens=4))
        assert info.value.n_ctx == 128
        assert info.value.prompt_tokens > 128
        assert isinstance(info.value, InferenceError)
        await wait_idle(runner)
        # Still usable, and a prompt that nearly fills the window is capped by it.
        chunks, end = await collect(runner, completion("fits", "word " * 100, temperature=0.0))
        assert end.prompt_tokens + end.completion_tokens <= 128
        assert sum(c.n_tokens for c in chunks) <= end.completion_tokens
    finally:
        await runner.aclose()


@module_loop
async def test_missing_model_file(tmp_path: Path) -> None:
    runner = LlamaRunner(RunnerConfig(model_path=tmp_path / "nope.gguf"))
    assert runner.name == "nope"
    with pytest.raises(ModelLoadError, match=r"nope\.gguf"):
        await runner.load()
    assert not runner.ready
    with pytest.raises(ModelLoadError):
        await collect(runner, completion("x", "hi"))
    await runner.aclose()


@module_loop
async def test_corrupt_model_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 1024)
    runner = LlamaRunner(RunnerConfig(model_path=path))
    try:
        with pytest.raises(ModelLoadError):
            await runner.load()
        assert not runner.ready
    finally:
        await runner.aclose()


@module_loop
async def test_stream_before_load(tmp_path: Path) -> None:
    runner = LlamaRunner(RunnerConfig(model_path=tmp_path / "later.gguf"))
    with pytest.raises(ModelLoadError, match="loading"):
        await collect(runner, completion("early", "hi"))
    await runner.aclose()


@needs_model
@module_loop
async def test_aclose_twice_is_safe() -> None:
    runner = await load_runner(n_ctx=256)
    assert runner.ready
    await runner.aclose()
    assert not runner.ready
    await runner.aclose()
    with pytest.raises(ModelLoadError):
        await collect(runner, completion("closed", "hi"))


@needs_model
@module_loop
async def test_aclose_ends_an_active_stream() -> None:
    runner = await load_runner(n_ctx=1024)
    events = runner.stream(chat("busy", LONG, temperature=0.0, max_tokens=600))
    try:
        assert isinstance(await anext(events), TokenChunk)
        await runner.aclose()
        with pytest.raises((StopAsyncIteration, InferenceError)):
            for _ in range(1000):  # drain what was already queued, then it must end
                await asyncio.wait_for(anext(events), timeout=2.0)
    finally:
        await events.aclose()
        await runner.aclose()
