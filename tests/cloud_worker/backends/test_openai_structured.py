"""What the worker asks an OpenAI-compatible engine for when a request is constrained
or sets llama.cpp's sampling knobs (the engine itself: tests/e2e/test_clients_upstream.py)."""

from __future__ import annotations

import json

import pytest

from cloud_worker.backends.openai import (
    Continuation,
    StructuredStyle,
    _choice_logprobs,
    request_body,
)
from inference import InferenceError
from shared.messages import ChatMessage, GenerateRequest, OutputFormat, SamplingParams

MODELS = ("big",)
HELLO = (ChatMessage(role="user", content="hi"),)
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def body_for(request: GenerateRequest, style: StructuredStyle) -> dict[str, object]:
    _, body = request_body(
        request, models=MODELS, continuation=Continuation.CHAT, template=None, structured=style
    )
    return body


def test_json_schema_style_for_vllm_sglang_and_llama_server() -> None:
    output = OutputFormat(schema_text=json.dumps(SCHEMA), name="thing", strict=True)
    request = GenerateRequest(request_id="r", messages=HELLO, output=output)
    assert body_for(request, StructuredStyle.JSON_SCHEMA)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": SCHEMA, "strict": True},
    }
    assert body_for(request, StructuredStyle.JSON_OBJECT)["response_format"] == {
        "type": "json_object",
        "schema": SCHEMA,
    }


def test_any_json_and_no_constraint() -> None:
    any_json = GenerateRequest(request_id="r", messages=HELLO, output=OutputFormat())
    assert body_for(any_json, StructuredStyle.JSON_SCHEMA)["response_format"] == {
        "type": "json_object"
    }
    free = GenerateRequest(request_id="r", messages=HELLO)
    assert "response_format" not in body_for(free, StructuredStyle.JSON_SCHEMA)


def test_sampling_knobs_are_passed_only_when_set() -> None:
    params = SamplingParams(top_k=5, min_p=0.1, repeat_penalty=1.2, logit_bias=((7, -100.0),))
    body = body_for(
        GenerateRequest(request_id="r", messages=HELLO, params=params), StructuredStyle.JSON_SCHEMA
    )
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (5, 0.1, 1.2)
    assert body["logit_bias"] == {"7": -100.0}
    plain = body_for(GenerateRequest(request_id="r", messages=HELLO), StructuredStyle.JSON_SCHEMA)
    assert not {"top_k", "min_p", "repeat_penalty", "logit_bias"} & set(plain)


@pytest.mark.parametrize(
    "request_",
    [
        GenerateRequest(request_id="r", messages=HELLO, params=SamplingParams(num_ctx=512)),
        GenerateRequest(
            request_id="r", messages=HELLO, output=OutputFormat(), continuation='{"a": '
        ),
    ],
)
def test_what_an_engine_cannot_do_is_refused(request_: GenerateRequest) -> None:
    with pytest.raises(InferenceError):
        body_for(request_, StructuredStyle.JSON_SCHEMA)


def test_logprobs_are_asked_for_in_each_endpoints_form() -> None:
    params = SamplingParams(logprobs=2)
    chat = body_for(
        GenerateRequest(request_id="r", messages=HELLO, params=params), StructuredStyle.JSON_SCHEMA
    )
    assert (chat["logprobs"], chat["top_logprobs"]) == (True, 2)
    _, legacy = request_body(
        GenerateRequest(request_id="r", prompt="Once", params=params),
        models=MODELS,
        continuation=Continuation.CHAT,
        template=None,
    )
    assert legacy["logprobs"] == 2 and "top_logprobs" not in legacy


def test_logprobs_are_read_from_either_shape() -> None:
    chat = {
        "logprobs": {
            "content": [
                {
                    "token": "H",
                    "logprob": -0.5,
                    "top_logprobs": [
                        {"token": "H", "logprob": -0.5},
                        {"token": "Hi", "logprob": -1},
                    ],
                }
            ]
        }
    }
    (scored,) = _choice_logprobs(chat)
    assert (scored.token, scored.logprob, scored.top) == ("H", -0.5, (("H", -0.5), ("Hi", -1.0)))
    legacy = {
        "logprobs": {
            "tokens": ["a", "b"],
            "token_logprobs": [None, -0.25],
            "top_logprobs": [None, {"b": -0.25}],
        }
    }
    (only,) = _choice_logprobs(legacy)  # the engine gave no number for the first
    assert (only.token, only.top) == ("b", (("b", -0.25),))
    assert _choice_logprobs({"logprobs": None}) == ()
