"""What is embedded for routing: the last ask, with the tail of the turn before it."""

from __future__ import annotations

from router_lab.embed import ASK_CHARS, CONTEXT_CHARS, routing_text
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
