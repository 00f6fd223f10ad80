"""Token confidence: exact values on known logits, and the runner's probe on the real model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference import ConfidenceProbe, LlamaRunner, RunnerConfig, TokenConfidence
from inference.confidence import token_confidence
from shared import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.model import model_path


def test_confidence_of_known_logits() -> None:
    logits = np.log(np.array([0.7, 0.2, 0.1], dtype=np.float32))
    chosen = token_confidence(logits, 0)
    assert chosen.logprob == pytest.approx(math.log(0.7), abs=1e-6)
    assert chosen.margin == pytest.approx(0.5, abs=1e-6)
    # the margin is about the distribution, not the sampled token
    other = token_confidence(logits, 2)
    assert other.logprob == pytest.approx(math.log(0.1), abs=1e-6)
    assert other.margin == chosen.margin


def test_confidence_is_shift_invariant_and_bounded() -> None:
    logits = np.array([1000.0, 1000.0, -5.0], dtype=np.float32)  # no overflow, a tie
    tie = token_confidence(logits, 1)
    assert tie.margin == pytest.approx(0.0, abs=1e-9)
    assert tie.logprob == pytest.approx(math.log(0.5), abs=1e-6)


def test_probe_bounds() -> None:
    with pytest.raises(ValueError):
        ConfidenceProbe(0)
    probe = ConfidenceProbe(2)
    probe.values.append(TokenConfidence(-0.1, 0.9))
    assert probe.wants() and not probe.full


@pytest.mark.asyncio
async def test_probe_gets_the_first_tokens_and_changes_nothing_else() -> None:
    runner = LlamaRunner(RunnerConfig(model_path=model_path(), n_ctx=512))
    await runner.load()
    try:
        request = GenerateRequest(
            request_id="probe",
            messages=(ChatMessage(role="user", content="Write a short story about a cat."),),
            params=SamplingParams(max_tokens=10, temperature=0),
        )
        plain = [e async for e in runner.stream(request)]
        probe = ConfidenceProbe(5)
        probed = [e async for e in runner.stream(request, probe=probe)]
    finally:
        await runner.aclose()
    end = probed[-1]
    assert isinstance(end, StreamEnd) and end.completion_tokens == 10
    assert len(probe.values) == 5  # the first five only, though ten were generated
    for value in probe.values:
        assert value.logprob <= 0 and 0 <= value.margin <= 1
    # greedy: the chosen token is the top one, so its probability is at least the margin
    assert all(math.exp(v.logprob) >= v.margin - 1e-9 for v in probe.values)

    def text(events: list[TokenChunk | StreamEnd]) -> str:
        return "".join(e.text for e in events if isinstance(e, TokenChunk))

    assert text(probed) == text(plain)
