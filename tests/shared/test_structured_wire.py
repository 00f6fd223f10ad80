"""The structured-output and sampling fields on the wire: round trips, an old peer's
frame, bounds."""

from __future__ import annotations

import msgpack
import pytest
from pydantic import ValidationError

from shared import PROTOCOL_VERSION, decode, encode
from shared.messages import (
    MAX_SCHEMA_CHARS,
    ChatMessage,
    GenerateRequest,
    OutputFormat,
    SamplingParams,
    TokenChunk,
    TokenLogprob,
)

HELLO = (ChatMessage(role="user", content="hi"),)


def test_constrained_request_round_trips() -> None:
    params = SamplingParams(
        top_k=20,
        min_p=0.1,
        repeat_penalty=1.2,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias=((13, -100.0), (7, 2.5)),
        num_ctx=512,
    )
    output = OutputFormat(schema_text='{"type":"object"}', name="city", strict=False)
    message = GenerateRequest(request_id="s", messages=HELLO, params=params, output=output)
    assert decode(encode(message)) == message


def test_a_request_from_an_older_peer_is_unconstrained() -> None:
    fields = {"request_id": "old", "messages": [{"role": "user", "content": "hi"}]}
    old = decode(msgpack.packb([PROTOCOL_VERSION, "generate_request", fields]))
    assert isinstance(old, GenerateRequest)
    assert old.output is None and old.params.top_k is None and old.params.logit_bias == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"logit_bias": ((1, 101.0),)},
        {"presence_penalty": 3.0},
        {"min_p": 1.5},
        {"num_ctx": 0},
        {"top_k": -1},
    ],
)
def test_sampling_bounds(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SamplingParams.model_validate(bad)


def test_schema_length_is_bounded() -> None:
    with pytest.raises(ValidationError):
        OutputFormat(schema_text="x" * (MAX_SCHEMA_CHARS + 1))


def test_token_logprobs_round_trip() -> None:
    scored = TokenLogprob(token=" red", logprob=-0.25, top=((" red", -0.25), (" blue", -1.5)))
    chunk = TokenChunk(request_id="s", text=" red", n_tokens=1, logprobs=(scored,))
    assert decode(encode(chunk)) == chunk
    with pytest.raises(ValidationError):
        SamplingParams(logprobs=21)
