"""The token-embedding head: what it reads, how it is stored, and which GGUF it is for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.router.model import ELABORATION_FLOOR, sigmoid
from edge_agent.router.table import (
    ASK_CHARS,
    CONTEXT_CHARS,
    TokenHead,
    blend,
    file_sha256,
    load_token_head,
    routing_text,
)
from inference.models import bundled_model_path
from shared.messages import ChatMessage, GenerateRequest


def _chat(*turns: tuple[str, str]) -> GenerateRequest:
    return GenerateRequest(
        request_id="r",
        messages=tuple(ChatMessage.model_validate({"role": r, "content": c}) for r, c in turns),
    )


def test_the_last_ask_leads_and_history_is_only_its_context() -> None:
    long_answer = "proof step. " * 500
    request = _chat(
        ("system", "You are a careful assistant."),
        ("user", "Prove the spectral theorem for compact self-adjoint operators."),
        ("assistant", long_answer),
        ("user", "thanks! what does 'compact' mean?"),
    )
    text = routing_text(request)
    assert text.endswith("thanks! what does 'compact' mean?")
    assert "careful assistant" not in text and "spectral" not in text
    assert len(text) <= CONTEXT_CHARS + 2 + len("thanks! what does 'compact' mean?")


def test_single_prompts_and_long_asks_are_cut_to_their_end() -> None:
    assert routing_text(GenerateRequest(request_id="r", prompt="x" * 5000)) == "x" * ASK_CHARS
    assert routing_text(_chat(("user", "hi"))) == "hi"
    assert routing_text(_chat(("system", "only a system prompt"))) == ""


def _head(weights: list[float], *, sha: str = "0" * 64, bias: float = -1.0) -> TokenHead:
    return TokenHead(gguf_sha256=sha, weights=weights, bias=bias, threshold=0.4)


def test_log_odds_is_the_bias_plus_the_mean_of_the_tokens_weights() -> None:
    head = _head([0.0, 2.0, 4.0])
    assert head.log_odds([1, 2]) == -1.0 + 3.0
    assert head.log_odds([]) == -1.0
    assert head.log_odds([2, 99, -1]) == -1.0 + 4.0  # ids outside the vocabulary skipped


def test_written_head_reads_back_exactly_and_only_for_its_gguf(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF not really a model")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF another model")
    head = _head([0.5, -0.25, 1.5], sha=file_sha256(gguf))
    path = tmp_path / "router_table.json"
    head.write(path)
    assert path.with_suffix(".f32").stat().st_size == 3 * 4
    loaded = load_token_head(gguf, path)
    assert loaded is not None
    assert list(loaded.weights) == [0.5, -0.25, 1.5]
    assert (loaded.bias, loaded.threshold) == (head.bias, head.threshold)
    with caplog.at_level(logging.INFO, logger="edge_agent.router.table"):
        assert load_token_head(other, path) is None
    assert "routing on prompt features only" in caplog.text
    assert load_token_head(None, path) is None
    assert load_token_head(tmp_path / "missing.gguf", path) is None


def test_blend_averages_log_odds_and_keeps_the_elaboration_rule() -> None:
    assert blend(0.5, 0.0, False) == pytest.approx(0.5)
    assert blend(sigmoid(2.0), -2.0, False) == pytest.approx(0.5)
    assert blend(0.01, -10.0, True) == ELABORATION_FLOOR


def test_bundled_head_is_for_the_bundled_gguf() -> None:
    """The shipped head loads for the bundled SmolLM2 (hash match) and has one weight per
    token of its vocabulary."""
    model = bundled_model_path()
    if model is None:
        pytest.skip("the bundled model is not installed")
    head = load_token_head(model)
    assert head is not None
    assert len(head.weights) == 49152
    assert 0.0 < head.threshold < 1.0
