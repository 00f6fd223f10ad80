"""What to ask an OpenAI-compatible engine for: the endpoint and JSON body for one request.

Split from ``openai.py`` (the streaming backend) because it is pure: a function of the
request and of what the engine is (how it resumes a turn, which ``response_format`` form
it takes), and is unit-tested as such.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from cloud_worker.errors import BackendUnavailable
from inference import InferenceError
from inference.templates import ChatTemplate
from shared.messages import GenerateRequest, OutputFormat

__all__ = ["Continuation", "StructuredStyle", "request_body"]


class Continuation(StrEnum):
    """How an engine resumes an assistant turn that another engine started."""

    AUTO = "auto"
    """Ask the engine what it is (vLLM, SGLang, llama-server); else ``completions`` when a
    chat template is configured, else ``refuse``."""
    CHAT = "chat"
    """vLLM, SGLang: the delivered text as a final assistant message, with
    ``continue_final_message: true`` and ``add_generation_prompt: false``."""
    PREFILL = "prefill"
    """llama-server: a final assistant message is continued as is."""
    COMPLETIONS = "completions"
    """Any engine: the conversation rendered by the model's chat template plus the
    delivered text, sent to ``/completions`` (needs ``--upstream-chat-template``)."""
    REFUSE = "refuse"
    """No resumption here: the edge continues the stream elsewhere."""


class StructuredStyle(StrEnum):
    """How an engine is asked for JSON output (``response_format``)."""

    JSON_SCHEMA = "json_schema"
    """OpenAI's form: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
    (vLLM, SGLang, llama-server)."""
    JSON_OBJECT = "json_object"
    """The older form: ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's
    server, and llama-server too)."""


def request_body(
    request: GenerateRequest,
    *,
    models: tuple[str, ...],
    continuation: Continuation,
    template: ChatTemplate | None,
    structured: StructuredStyle = StructuredStyle.JSON_SCHEMA,
) -> tuple[str, dict[str, Any]]:
    """The endpoint and JSON body that ask an engine serving ``models`` for ``request``;
    ``BackendUnavailable`` for a resumption this engine cannot do exactly."""
    params = request.params
    body: dict[str, Any] = {
        "model": request.model if request.model in models else models[0],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    body.update(_sampling_extras(request))
    if request.output is not None:
        if request.continuation:
            raise InferenceError("a constrained (JSON) answer cannot be resumed mid-way")
        body["response_format"] = _response_format(request.output, structured)
    if request.prompt is not None:
        return "/completions", {
            **body,
            **_logprobs(request, chat=False),
            "prompt": request.prompt + request.continuation,
        }
    assert request.messages is not None
    messages = [m.model_dump() for m in request.messages]
    body.update(_logprobs(request, chat=True))
    if not request.continuation:
        return "/chat/completions", {**body, "messages": messages}
    turn = {"role": "assistant", "content": request.continuation}
    if continuation is Continuation.CHAT:
        return "/chat/completions", {
            **body,
            "messages": [*messages, turn],
            "continue_final_message": True,
            "add_generation_prompt": False,
        }
    if continuation is Continuation.PREFILL:
        return "/chat/completions", {**body, "messages": [*messages, turn]}
    if continuation is Continuation.COMPLETIONS and template is not None:
        rendered = template.render(request.messages, add_generation_prompt=True)
        return "/completions", {
            **body,
            **_logprobs(request, chat=False),
            "prompt": rendered + request.continuation,
        }
    raise BackendUnavailable("this worker's engine cannot resume a stream another started")


def _sampling_extras(request: GenerateRequest) -> dict[str, Any]:
    """The knobs beyond OpenAI's basic ones, only when set: ``top_k``, ``min_p`` and
    ``repeat_penalty`` are llama.cpp's and vLLM's names (vLLM also takes
    ``repetition_penalty``; it ignores ``repeat_penalty`` with a warning)."""
    params = request.params
    extras: dict[str, Any] = {}
    for name in ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        value = getattr(params, name)
        if value is not None:
            extras[name] = value
    if params.logit_bias:
        extras["logit_bias"] = {str(t): b for t, b in params.logit_bias}
    if params.num_ctx is not None:
        # No OpenAI-compatible engine resizes its context per request: the prompt and
        # answer are held to it by capping the answer (a prompt past it fails, as there).
        raise InferenceError("num_ctx cannot be honoured by this worker's engine; leave it unset")
    return extras


def _logprobs(request: GenerateRequest, *, chat: bool) -> dict[str, Any]:
    """Chat's ``logprobs: true`` + ``top_logprobs``, or the completions' legacy count."""
    top = request.params.logprobs
    if top is None:
        return {}
    return {"logprobs": True, "top_logprobs": top} if chat else {"logprobs": top}


def _response_format(output: OutputFormat, style: StructuredStyle) -> dict[str, Any]:
    if output.schema_text is None:
        return {"type": "json_object"}
    schema = json.loads(output.schema_text)
    if style is StructuredStyle.JSON_OBJECT:
        return {"type": "json_object", "schema": schema}
    spec = {"name": output.name, "schema": schema, "strict": output.strict}
    return {"type": "json_schema", "json_schema": spec}
