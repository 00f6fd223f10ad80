"""``EmbeddingRunner`` on the bundled model: vectors, limits, queue and cancellation."""

from __future__ import annotations

import asyncio
import math

import pytest

from inference import RunnerOverloaded
from inference.embeddings import EmbeddingConfig, EmbeddingRunner, InputTooLong
from tests.support.model import model_path
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio

TEXT = "Edge devices answer simple prompts locally."


def runner(**config: int) -> EmbeddingRunner:
    return EmbeddingRunner(EmbeddingConfig(model_path=model_path(), **config))


async def test_loads_on_first_use_and_normalises() -> None:
    embedder = runner(max_input_tokens=64)
    try:
        assert not embedder.loaded and embedder.dimensions is None
        result = await embedder.embed([TEXT, "word " * 100], truncate=True)
        assert embedder.loaded and result.dimensions == embedder.dimensions == 576
        assert result.prompt_tokens == embedder.count_tokens(TEXT) + 64
        for vector in result.vectors:
            assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
        with pytest.raises(InputTooLong) as err:
            await embedder.embed([TEXT, "word " * 100], truncate=False)
        assert (err.value.index, err.value.limit) == (1, 64) and err.value.n_tokens > 64
    finally:
        await embedder.aclose()


async def test_queue_is_bounded_and_cancellation_stops_between_inputs() -> None:
    embedder = runner(max_input_tokens=64, max_waiting=0)
    try:
        await embedder.embed([TEXT], truncate=True)  # loaded
        done = embedder.embedded_inputs
        long = asyncio.create_task(embedder.embed([TEXT] * 64, truncate=True))
        await eventually(lambda: embedder.embedded_inputs > done, what="the batch under way")
        with pytest.raises(RunnerOverloaded):
            await embedder.embed([TEXT], truncate=True)
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        after = await embedder.embed([TEXT], truncate=True)  # runs after the thread stopped
        assert len(after.vectors) == 1
        assert embedder.embedded_inputs < done + 64 + 1  # the 64-input batch stopped early
    finally:
        await embedder.aclose()
