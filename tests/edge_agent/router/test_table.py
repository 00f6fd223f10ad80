"""The token-embedding head: what it reads, how it is stored, and which GGUF it is for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.router.features import extract_features
from edge_agent.router.model import ELABORATION_FLOOR, sigmoid
from edge_agent.router.table import (
    ASK_CHARS,
    CONTEXT_CHARS,
    FOCUS_LONG_CHARS,
    FOCUS_PART_CHARS,
    TokenHead,
    blend,
    file_sha256,
    focus_text,
    load_token_head,
    routing_text,
    with_head_tokens,
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


def test_a_short_message_is_its_own_focus() -> None:
    assert focus_text(_chat(("user", "who signed this letter?"))) == (
        "who signed this letter?",
        False,
    )
    assert focus_text(GenerateRequest(request_id="r", prompt="hi")) == ("hi", False)
    assert focus_text(_chat(("system", "only a system prompt"))) == ("", False)


def test_a_long_message_is_read_as_its_first_and_last_paragraphs() -> None:
    """The ask sits around the pasted material: the focus keeps the first paragraph's
    start and the last's end, and never the code in between."""
    letter = "\n\n".join(
        f"Paragraph {n} of the letter, about the stairwell. " * 3 for n in range(8)
    )
    message = f"I'm filing this email.\n\n{letter}\n\n```\nrm -rf /tmp/x\n```\n\nWho signed it?"
    assert len(message) > FOCUS_LONG_CHARS
    text, long = focus_text(_chat(("user", message)))
    assert long
    assert text == "I'm filing this email.\n\nWho signed it?"
    one_block = "word " * 400
    text, long = focus_text(_chat(("user", one_block)))
    assert long and text == one_block.strip()[:FOCUS_PART_CHARS]
    fenced = "```\n" + "x = 1\n" * 200 + "```"
    assert focus_text(_chat(("user", fenced))) == ("", True)


def _focus_head(sha: str = "0" * 64) -> TokenHead:
    return TokenHead(
        gguf_sha256=sha,
        weights=[0.0, 2.0, 4.0],
        bias=-1.0,
        threshold=0.4,
        focus_short=[1.0, 0.0, 0.0],
        focus_long=[-3.0, 0.0, 5.0],
    )


def test_a_focus_head_adds_the_long_or_short_focus_weights() -> None:
    head = _focus_head()
    assert head.reads_focus and not _head([0.0]).reads_focus
    assert head.log_odds([1], [0], long=False) == -1.0 + 2.0 + 1.0
    assert head.log_odds([1], [0, 2], long=True) == -1.0 + 2.0 + 1.0
    assert head.log_odds([1], [], long=True) == -1.0 + 2.0  # an empty focus adds nothing
    assert head.log_odds([1]) == -1.0 + 2.0  # no focus ids: the routing text alone
    with pytest.raises(ValueError, match="both focus weight sets"):
        TokenHead(gguf_sha256="0" * 64, weights=[0.0], bias=0.0, threshold=0.5, focus_short=[1.0])
    with pytest.raises(ValueError, match="one value per token id"):
        TokenHead(
            gguf_sha256="0" * 64,
            weights=[0.0],
            bias=0.0,
            threshold=0.5,
            focus_short=[1.0, 2.0],
            focus_long=[1.0, 2.0],
        )


def test_a_focus_head_is_written_as_three_tables_and_reads_back(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF not really a model")
    head = _focus_head(file_sha256(gguf))
    path = tmp_path / "router_table.json"
    head.write(path)
    assert path.with_suffix(".f32").stat().st_size == 3 * 3 * 4
    loaded = load_token_head(gguf, path)
    assert loaded is not None and loaded.reads_focus
    assert list(loaded.weights) == [0.0, 2.0, 4.0]
    assert list(loaded.focus_short or ()) == [1.0, 0.0, 0.0]
    assert list(loaded.focus_long or ()) == [-3.0, 0.0, 5.0]


def _word_lengths(text: str) -> list[int]:
    """A stand-in tokeniser: one id per word, its length."""
    return [len(word) for word in text.split()]


def test_with_head_tokens_supplies_what_the_head_reads() -> None:
    """Routing ids always; focus ids and the long flag only for a head that reads them;
    nothing when the tokeniser cannot answer yet (the model not loaded)."""
    request = _chat(("user", "who signed this letter?"))
    features = extract_features(request)

    plain = with_head_tokens(features, request, _word_lengths, _head([0.0] * 10), last_ask=True)
    assert plain.ask_tokens == (3, 6, 4, 7) and plain.focus_tokens is None
    focused = with_head_tokens(features, request, _word_lengths, _focus_head(), last_ask=True)
    assert focused.ask_tokens == (3, 6, 4, 7)
    assert (focused.focus_tokens, focused.focus_long) == ((3, 6, 4, 7), False)
    assert focused.last_ask is None, "one user turn: nothing to read apart"
    completion = GenerateRequest(request_id="r", prompt="who signed this letter?")
    as_text = with_head_tokens(
        extract_features(completion), completion, _word_lengths, _focus_head(), last_ask=True
    )
    assert as_text.ask_tokens == (3, 6, 4, 7) and as_text.last_ask is None, "no turns at all"
    unready = with_head_tokens(features, request, lambda _: None, _focus_head(), last_ask=True)
    assert unready is features


def test_with_head_tokens_reads_a_conversations_last_ask_alone_where_asked() -> None:
    """History, done right: where a second look may follow, the last ask is also read on
    its own, the system turn kept, with its own ids, so that an easy follow-up in a hard
    conversation can be scored as what it asks. Elsewhere nothing reads it: not made."""
    request = _chat(
        ("system", "You are a terse assistant."),
        ("user", "Prove that there are infinitely many primes."),
        ("assistant", "Suppose there were finitely many primes p1..pn. " * 20),
        ("user", "thanks!"),
    )
    plain = extract_features(request)
    assert plain.last_ask is None, "the features alone never carry it"
    features = with_head_tokens(plain, request, _word_lengths, _focus_head(), last_ask=True)
    alone = features.last_ask
    assert alone is not None and features.history_hard and features.ask_tokens is not None
    assert features.ask_tokens[-1] == 7  # "thanks!" ends the routing text
    assert (alone.ask_tokens, alone.focus_tokens) == ((7,), (7,))  # "thanks!" alone
    assert not alone.history_hard and alone.turns == 2 and alone.last_ask is None
    asked_alone = _chat(("system", "You are a terse assistant."), ("user", "thanks!"))
    assert alone == with_head_tokens(
        extract_features(asked_alone), asked_alone, _word_lengths, _focus_head(), last_ask=False
    )
    without = with_head_tokens(plain, request, _word_lengths, _focus_head(), last_ask=False)
    assert without.last_ask is None and without.ask_tokens == features.ask_tokens
