"""Structured output as clients ask for it: OpenAI ``response_format``, Ollama ``format``.

Both become one wire ``OutputFormat`` (a JSON schema, or any JSON), which the engine that
serves enforces: the local model and a worker's llama.cpp with a grammar, an
OpenAI-compatible upstream with its own guided decoding (``response_format``). Schemas
are checked here, before anything runs, so that a malformed one is a 400 naming the
field rather than a failure deep in an engine.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.errors import RequestInvalid
from inference.constraints import schema_gbnf
from shared.messages import MAX_SCHEMA_CHARS, OutputFormat

__all__ = ["JsonSchemaSpec", "ResponseFormat", "check_schema", "ollama_format", "output_format"]


class JsonSchemaSpec(BaseModel):
    """OpenAI's ``response_format.json_schema``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field(default="output", min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``: ``text``, ``json_object`` or ``json_schema``."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


UNENFORCED_KEYWORDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minProperties",
        "maxProperties",
        "uniqueItems",
        "not",
        "if",
        "then",
        "else",
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
"""JSON-schema keywords the llama.cpp grammar converter does not enforce: a schema using
them would be answered with JSON that may not validate, so it is refused by name."""
ENFORCED_FORMATS = frozenset(
    {"date", "time", "date-time", "uuid"} | {f"uuid{i}" for i in range(1, 6)}
)

_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONES = ("items", "additionalProperties")


def _unenforced(schema: object, path: str) -> str | None:
    """The path of the first keyword in ``schema`` no grammar would enforce, if any."""
    if not isinstance(schema, dict):
        return None
    for key in schema:
        if key in UNENFORCED_KEYWORDS:
            return f"{path}.{key}"
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt not in ENFORCED_FORMATS:
        return f"{path}.format"
    found: str | None = None
    for key in _SCHEMA_MAPS:
        members = schema.get(key)
        if isinstance(members, dict):
            for name, sub in members.items():
                found = found or _unenforced(sub, f"{path}.{key}.{name}")
    for key in _SCHEMA_LISTS:
        members = schema.get(key)
        if isinstance(members, list):
            for i, sub in enumerate(members):
                found = found or _unenforced(sub, f"{path}.{key}[{i}]")
    for key in _SCHEMA_ONES:
        found = found or _unenforced(schema.get(key), f"{path}.{key}")
    return found


def check_schema(schema: object, *, param: str) -> str:
    """``schema`` as compact JSON text, or a 400 naming ``param`` when it is no schema
    (or the keyword, when it uses one the grammar cannot enforce)."""
    if not isinstance(schema, dict):
        raise RequestInvalid(f"{param} must be a JSON schema (an object).", param=param)
    unenforced = _unenforced(schema, param)
    if unenforced is not None:
        raise RequestInvalid(
            f"{unenforced} cannot be enforced by the grammar that constrains the answer "
            "(docs/clients.md lists the JSON-schema keywords that can); remove it and "
            "check it after parsing.",
            param=unenforced,
        )
    text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_SCHEMA_CHARS:
        raise RequestInvalid(
            f"{param} is {len(text)} characters of JSON; at most {MAX_SCHEMA_CHARS} are accepted.",
            param=param,
        )
    try:  # the converter every llama.cpp engine uses: what it cannot take is refused now
        schema_gbnf(text)  # as the local runner holds it (a class of only escapes: refused)
    except Exception as exc:  # the converter's failures are not a documented set
        raise RequestInvalid(
            f"{param} cannot be enforced as a grammar: {exc}", param=param
        ) from exc
    return text


def output_format(fmt: ResponseFormat | None) -> OutputFormat | None:
    """The wire constraint for OpenAI's ``response_format`` (``None``: free text)."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputFormat()
    spec = fmt.json_schema
    if spec is None or spec.schema_ is None:
        raise RequestInvalid(
            "response_format.json_schema.schema is required for type json_schema.",
            param="response_format.json_schema.schema",
        )
    text = check_schema(spec.schema_, param="response_format.json_schema.schema")
    return OutputFormat(schema_text=text, name=spec.name, strict=bool(spec.strict))


def ollama_format(fmt: object) -> OutputFormat | None:
    """The wire constraint for Ollama's ``format``: ``"json"``, a schema, or unset."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return OutputFormat()
    if isinstance(fmt, dict):
        return OutputFormat(schema_text=check_schema(fmt, param="format"))
    raise RequestInvalid('format must be "json" or a JSON schema.', param="format")
