"""Output constraints and sampling knobs on the real local model: a schema-constrained
answer validates whatever the seed, ``num_ctx`` holds the prompt to a smaller window and
refuses a larger one, ``logit_bias`` steers tokens, and what cannot be honoured is an
``InferenceError`` (a 400 at the edge)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import jsonschema
import pytest
import pytest_asyncio

from inference import ContextTooLong, InferenceError, LlamaRunner
from shared import ChatMessage, GenerateRequest, SamplingParams
from shared.messages import OutputFormat
from tests.inference.test_llama import (
    MODEL,
    collect,
    load_runner,
    module_loop,
    needs_model,
    text_of,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
    },
    "required": ["colour", "count"],
    "additionalProperties": False,
}
ASK = (ChatMessage(role="user", content="Pick a colour and a number."),)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner() -> AsyncIterator[LlamaRunner]:
    loaded = await load_runner(n_ctx=512)
    yield loaded
    await loaded.aclose()


def ask(output: OutputFormat | None = None, **params: object) -> GenerateRequest:
    return GenerateRequest(
        request_id="c",
        messages=ASK,
        params=SamplingParams(**params),  # type: ignore[arg-type]
        output=output,
    )


@needs_model
@module_loop
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_schema_constrained_answers_validate(runner: LlamaRunner, seed: int) -> None:
    output = OutputFormat(schema_text=json.dumps(SCHEMA))
    chunks, end = await collect(
        runner, ask(output, max_tokens=60, temperature=1.0, seed=seed, top_k=50)
    )
    assert end.finish_reason == "stop"
    jsonschema.validate(json.loads(text_of(chunks)), SCHEMA)


@needs_model
@module_loop
@pytest.mark.parametrize(
    "note",
    [
        {"type": "string", "minLength": 3, "maxLength": 6},
        {"type": "string", "pattern": "^.{3,6}$"},  # a pattern's "." is its own rule
        {"type": "string", "pattern": "^[^,]{3,6}$"},  # and its classes their own
        {"type": "string", "pattern": "^[ -~]{3,6}$"},
    ],
    ids=["length", "pattern", "negated-class", "range"],
)
async def test_a_schema_string_never_holds_a_raw_control_character(
    runner: LlamaRunner, note: dict[str, object]
) -> None:
    # llama-cpp-python's schema converter lets a string hold any character but '"' and
    # '\\', a pattern's "." anything but CR and LF, and a pattern's class whatever it
    # names (its stock JSON grammar does not): pushed hard towards tabs, newlines and
    # quotes, a model would write them raw into the string, and the answer would not
    # parse (``inference.json_grammar``).
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(MODEL), vocab_only=True, verbose=False)
    try:
        pushed = {t for c in (b"\n", b"\t", b"\r", b'"') for t in vocab.tokenize(c, add_bos=False)}
    finally:
        vocab.close()
    schema = {"type": "object", "properties": {"note": note}, "required": ["note"]}
    bias = tuple((t, 100.0) for t in sorted(pushed))
    output = OutputFormat(schema_text=json.dumps(schema))
    chunks, end = await collect(runner, ask(output, max_tokens=60, temperature=0, logit_bias=bias))
    assert end.finish_reason == "stop"
    answer = json.loads(text_of(chunks))  # a raw control character would not parse
    jsonschema.validate(answer, schema)


@needs_model
@module_loop
async def test_num_ctx_is_honoured_up_to_the_models_window(runner: LlamaRunner) -> None:
    _, end = await collect(runner, ask(None, max_tokens=2, num_ctx=256))
    assert end.completion_tokens <= 2
    with pytest.raises(ContextTooLong):
        await collect(runner, ask(None, max_tokens=2, num_ctx=4))
    with pytest.raises(InferenceError, match="num_ctx"):
        await collect(runner, ask(None, max_tokens=2, num_ctx=513))


@needs_model
@module_loop
async def test_what_cannot_be_honoured_is_refused(runner: LlamaRunner) -> None:
    with pytest.raises(InferenceError, match="logit_bias"):
        await collect(runner, ask(None, max_tokens=2, logit_bias=((10**7, 5.0),)))
    resumed = ask(OutputFormat()).model_copy(update={"continuation": '{"a": '})
    with pytest.raises(InferenceError, match="resumed"):
        await collect(runner, resumed)
