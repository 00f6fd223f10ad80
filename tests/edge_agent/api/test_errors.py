"""The error table: every edge error has one wire answer, and 5xx answers leak nothing."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from edge_agent.api.errors import ERROR_TABLE, InvalidJson, ModelNotFound, api_error
from edge_agent.errors import (
    ConnectTimeout,
    ContextTooLong,
    EdgeError,
    GenerationFailed,
    ModelNotLoaded,
    NoPeerAvailable,
    NotFound,
    Overloaded,
    PromptTooLong,
    RequestInvalid,
    Unauthorized,
)


def _request() -> web.BaseRequest:
    return make_mocked_request("POST", "/v1/chat/completions")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RequestInvalid("bad", param="x"), 400, "invalid_request"),
        (InvalidJson("bad"), 400, "invalid_json"),
        (ContextTooLong("long"), 400, "context_length_exceeded"),
        (PromptTooLong("book"), 400, "prompt_too_long"),
        (Unauthorized("no"), 401, "invalid_api_key"),
        (NotFound("gone"), 404, "not_found"),
        (ModelNotFound("gpt"), 404, "model_not_found"),
        (Overloaded("busy", retry_after_s=3), 429, "overloaded"),
        (NoPeerAvailable("none"), 503, "cloud_unavailable"),
        (ConnectTimeout("slow"), 502, "cloud_path_failed"),
        (ModelNotLoaded("loading"), 503, "model_loading"),
        (GenerationFailed("llama said /secret/path"), 502, "generation_failed"),
        (EdgeError("?"), 500, "internal_error"),
        (RuntimeError("secret internals"), 500, "internal_error"),
    ],
)
def test_error_table(exc: Exception, status: int, code: str) -> None:
    error = api_error(exc, _request())
    assert (error.status, error.code) == (status, code)
    if status >= 500 and not isinstance(exc, NoPeerAvailable):
        assert "secret" not in error.message and str(exc) not in error.message


def test_error_table_extras() -> None:
    overloaded = api_error(Overloaded("busy", retry_after_s=3), _request())
    assert overloaded.headers["Retry-After"] == "3"
    assert api_error(Unauthorized("no"), _request()).headers["WWW-Authenticate"] == "Bearer"
    assert api_error(RequestInvalid("bad", param="top_p"), _request()).param == "top_p"
    assert EdgeError in ERROR_TABLE
