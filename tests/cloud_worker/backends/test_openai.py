"""What the worker asks an OpenAI-compatible engine, and what its refusals mean.

The bodies are checked against what each engine documents for resuming an assistant turn
(vLLM and SGLang: ``continue_final_message``; llama-server: a final assistant message;
anything else: the prompt rendered with the model's own template, to ``/completions``).
The end-to-end behaviour against a real engine is ``tests/e2e/test_openai_upstream.py``.
"""

from __future__ import annotations

import pytest

from cloud_worker.backends.openai import Continuation, refusal, request_body
from cloud_worker.errors import BackendError, BackendUnavailable, UpstreamContextTooLong
from inference import ContextTooLong, InferenceError
from inference.templates import ChatTemplate
from shared.messages import ChatMessage, GenerateRequest, SamplingParams
from tests.support.model import model_path

MODELS = ("big-model", "other-model")
ASK = (ChatMessage(role="user", content="Count to five."),)


def resumed(**extra: object) -> GenerateRequest:
    return GenerateRequest(
        request_id="r",
        messages=ASK,
        continuation="1, 2, 3",
        params=SamplingParams(max_tokens=7, temperature=0.0, stop=("\n\n",), seed=3),
        **extra,  # type: ignore[arg-type]
    )


def test_a_fresh_chat_is_a_streamed_chat_completion_with_every_knob() -> None:
    request = GenerateRequest(
        request_id="r", messages=ASK, params=SamplingParams(max_tokens=7, seed=3)
    )
    path, body = request_body(
        request, models=MODELS, continuation=Continuation.REFUSE, template=None
    )
    assert path == "/chat/completions"
    assert body == {
        "model": "big-model",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 7,
        "seed": 3,
        "messages": [{"role": "user", "content": "Count to five."}],
    }


def test_the_requested_model_is_used_when_the_engine_serves_it() -> None:
    request = GenerateRequest(request_id="r", model="other-model", messages=ASK)
    _, body = request_body(request, models=MODELS, continuation=Continuation.CHAT, template=None)
    assert body["model"] == "other-model"


def test_vllm_and_sglang_continue_the_final_assistant_message() -> None:
    path, body = request_body(
        resumed(), models=MODELS, continuation=Continuation.CHAT, template=None
    )
    assert path == "/chat/completions"
    assert body["messages"][-1] == {"role": "assistant", "content": "1, 2, 3"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["stop"] == ["\n\n"] and body["max_tokens"] == 7


def test_llama_server_prefills_the_final_assistant_message() -> None:
    path, body = request_body(
        resumed(), models=MODELS, continuation=Continuation.PREFILL, template=None
    )
    assert path == "/chat/completions"
    assert body["messages"][-1] == {"role": "assistant", "content": "1, 2, 3"}
    assert "continue_final_message" not in body


def test_other_engines_get_the_rendered_template_plus_the_delivered_text() -> None:
    template = ChatTemplate.load(model_path())  # the GGUF's own template
    path, body = request_body(
        resumed(), models=MODELS, continuation=Continuation.COMPLETIONS, template=template
    )
    assert path == "/completions"
    assert body["prompt"].endswith("<|im_start|>assistant\n1, 2, 3")
    assert "Count to five." in body["prompt"] and "messages" not in body


def test_an_engine_that_cannot_resume_refuses_retryably() -> None:
    for method, template in ((Continuation.REFUSE, None), (Continuation.COMPLETIONS, None)):
        with pytest.raises(BackendUnavailable, match="cannot resume"):
            request_body(resumed(), models=MODELS, continuation=method, template=template)


def test_a_completion_prompt_is_resumed_by_appending() -> None:
    request = GenerateRequest(request_id="r", prompt="Once upon", continuation=" a time")
    path, body = request_body(
        request, models=MODELS, continuation=Continuation.REFUSE, template=None
    )
    assert (path, body["prompt"]) == ("/completions", "Once upon a time")


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (429, "too many requests", BackendUnavailable),
        (503, "engine overloaded", BackendUnavailable),
        (502, "bad gateway", BackendUnavailable),
        (400, "This model's maximum context length is 4096 tokens.", UpstreamContextTooLong),
        (400, "Requested tokens (5000) exceed context window of 2048", UpstreamContextTooLong),
        (422, "temperature must be >= 0", InferenceError),
        (500, "CUDA error: out of memory", BackendError),
    ],
)
def test_engine_answers_keep_their_meaning(status: int, message: str, kind: type) -> None:
    error = refusal(status, message)
    assert type(error) is kind and message in str(error)
    if kind is UpstreamContextTooLong:
        assert isinstance(error, ContextTooLong)  # the edge answers 400 context_length_exceeded
