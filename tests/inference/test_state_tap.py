"""The C eval callback that reads the prompt state during its own prefill.

The tap is worth having only if it reads what the extra decode reads (the state the
lab fitted the router's head on) and changes nothing else: the same answers, the same
state whether the prompt fits one batch or spans several, and a clear error rather than
a wrong row when asked for a tensor llama.cpp does not compute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from inference import LlamaRunner, RunnerConfig, bundled_model_path
from inference.state_tap import StateTap, TapError, tap_available
from shared import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

MODEL = bundled_model_path()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="the bundled model is not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]


def _request(text: str) -> GenerateRequest:
    return GenerateRequest(
        request_id="r",
        messages=(ChatMessage(role="user", content=text),),
        params=SamplingParams(temperature=0, max_tokens=24),
    )


SHORT = _request("Write a haiku about the sea.")
# past one batch of 512 tokens: the state must come from the last batch's last row
LOG = "Summarise this log:\n" + "\n".join(f"line {i}: disk ok, fan ok" for i in range(90))
LONG = _request(LOG)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runners() -> AsyncIterator[tuple[LlamaRunner, LlamaRunner]]:
    assert MODEL is not None
    tapped = LlamaRunner(RunnerConfig(MODEL, n_ctx=2048, n_threads=1))
    decoded = LlamaRunner(RunnerConfig(MODEL, n_ctx=2048, n_threads=1, state_tap=False))
    await tapped.load()
    await decoded.load()
    yield tapped, decoded
    await tapped.aclose()
    await decoded.aclose()


@asynccontextmanager
async def untapped() -> AsyncIterator[Any]:
    """A loaded runner's ``Llama`` with no tap of the runner's own, for a test's taps."""
    assert MODEL is not None
    runner = LlamaRunner(RunnerConfig(MODEL, n_ctx=512, n_threads=1, state_tap=False))
    await runner.load()
    try:
        yield runner._llm
    finally:
        await runner.aclose()


async def test_the_tap_is_built_here() -> None:
    """Every install path here (``make``, CI) has a C compiler: no tap is a build bug."""
    assert tap_available()


async def test_the_tap_reads_the_state_the_extra_decode_reads(
    runners: tuple[LlamaRunner, LlamaRunner],
) -> None:
    tapped, decoded = runners
    assert (tapped.state_read, decoded.state_read) == ("tap", "decode")
    assert tapped._llm is not None
    assert len(tapped._llm.tokenize(LOG.encode())) > 512
    for request in (SHORT, LONG):
        read = await tapped.prompt_state(request)
        expected = await decoded.prompt_state(request)
        assert read.shape == expected.shape and np.isfinite(read).all()
        # the same state up to the float noise of one batch against two
        np.testing.assert_allclose(read, expected, rtol=0, atol=2e-2 * np.abs(expected).max())
        assert np.corrcoef(read, expected)[0, 1] > 0.999


async def test_answers_are_the_same_with_the_tap_installed(
    runners: tuple[LlamaRunner, LlamaRunner],
) -> None:
    answers = []
    for runner in runners:
        chunks = [e.text async for e in runner.stream(SHORT) if isinstance(e, TokenChunk)]
        answers.append("".join(chunks))
    assert answers[0] and answers[0] == answers[1]


async def test_a_tensor_llama_cpp_does_not_compute_is_a_clear_error() -> None:
    async with untapped() as llm:
        tap = StateTap(llm, "l_out-999")
        with pytest.raises(TapError, match="no tensor named l_out-999"):
            tap.read(llm, llm.tokenize(b"hello"))
        middle = StateTap(llm, "l_out-20")  # block 20 of 30: a row of its own
        llm.reset()
        row = middle.read(llm, llm.tokenize(b"hello there"))
        assert row.shape == (llm.n_embd(),) and np.isfinite(row).all()


async def test_several_blocks_are_read_side_by_side_as_each_alone() -> None:
    async with untapped() as llm:
        tokens = llm.tokenize(b"How many legs does a spider have?")
        names = ["l_out-12", "l_out-20", "result_norm"]
        tap = StateTap(llm, ",".join(names))
        llm.reset()
        together = tap.read(llm, tokens)
        width = llm.n_embd()
        assert together.shape == (3 * width,)
        for i, name in enumerate(names):
            tap.retarget(name)
            llm.reset()
            alone = tap.read(llm, tokens)
            np.testing.assert_array_equal(together[i * width : (i + 1) * width], alone)
        tap.retarget("l_out-20,l_out-999")
        llm.reset()
        with pytest.raises(TapError, match=r"no tensor named l_out-999$"):
            tap.read(llm, tokens)
        with pytest.raises(ValueError, match="distinct"):
            tap.retarget(",".join(f"l_out-{i}" for i in range(5)))


async def test_a_check_can_read_a_middle_block_where_the_tap_is_built(
    runners: tuple[LlamaRunner, LlamaRunner],
) -> None:
    tapped, decoded = runners
    assert not decoded.read_state_from("l_out-20")  # no tap: the final state only
    assert not decoded.read_state_from("l_out-12,l_out-20")
    assert not tapped.read_state_from("l_out-12,l_out-12")  # not a spec the tap reads
    assert decoded.read_state_from("result_norm")
    final = await tapped.prompt_state(SHORT)
    assert tapped.read_state_from("l_out-20")
    try:
        middle = await tapped.prompt_state(SHORT)
        seen: list[np.ndarray] = []

        def keep(state: np.ndarray) -> bool:
            seen.append(state.copy())
            return True

        chunks = tapped.stream(SHORT, check=keep)
        answer = "".join([e.text async for e in chunks if isinstance(e, TokenChunk)])
    finally:
        assert tapped.read_state_from("result_norm")
    assert np.array_equal(seen[0], middle)  # what a check sees is block 20's row
    cosine = middle @ final / np.linalg.norm(middle) / np.linalg.norm(final)
    assert cosine < 0.99  # not the final state under another name
    plain = [e.text async for e in decoded.stream(SHORT) if isinstance(e, TokenChunk)]
    assert answer == "".join(plain)  # and the answer is unchanged


async def test_a_tap_that_reads_the_wrong_place_is_caught_before_any_request() -> None:
    """A llama.cpp whose ``ggml_tensor`` moved under the mirror, here by shifting one
    offset: the runner's load-time check refuses the tap rather than fail requests."""
    async with untapped() as llm:
        tap = StateTap(llm)
        assert tap.self_check(llm) is None
        tap._state.off_ne += 8  # ne[1] read as the width
        assert "is not n_embd wide" in (tap.self_check(llm) or "")
