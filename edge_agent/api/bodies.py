"""JSON bodies in and out: parse into a pydantic model, answer with one.

Parsing maps every failure to the edge error tree at this boundary (``InvalidJson``,
``RequestInvalid`` with ``param`` naming the field) so handlers never see a
``ValidationError`` or a ``JSONDecodeError``. An oversized body raises aiohttp's
``HTTPRequestEntityTooLarge`` from ``request.read()``; the middleware maps that one.
"""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from edge_agent.api.errors import InvalidJson
from edge_agent.errors import RequestInvalid

__all__ = ["json_response", "read_model"]

M = TypeVar("M", bound=BaseModel)

_UNION_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _param(loc: tuple[int | str, ...]) -> str | None:
    """``("messages", 0, "content")`` -> ``"messages[0].content"``, skipping the tags
    pydantic inserts for union members (``"str"``, ``"list[ContentPart]"``)."""
    param = ""
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        elif part.lower() in _UNION_TAGS or "[" in part or "-" in part:
            continue
        else:
            param += f".{part}" if param else part
    return param or None


def _invalid(exc: ValidationError) -> RequestInvalid:
    first = exc.errors(include_url=False, include_input=False)[0]
    param = _param(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return RequestInvalid(f"{param}: {message}" if param else message, param=param)


async def read_model(request: web.Request, model: type[M]) -> M:
    """The request body validated as ``model``."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise InvalidJson("The request body is not valid JSON.") from exc
    except RecursionError as exc:  # arrays nested past the interpreter's recursion limit
        raise InvalidJson("The request body is nested too deeply.") from exc
    if not isinstance(data, dict):
        raise InvalidJson("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def json_response(body: BaseModel, *, status: int = 200) -> web.Response:
    """``body`` as an ``application/json`` response."""
    return web.Response(
        status=status, body=body.model_dump_json().encode(), content_type="application/json"
    )
