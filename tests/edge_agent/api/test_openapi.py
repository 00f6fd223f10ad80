"""``GET /openapi.json``: served without the key, complete, valid, made from the models."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from aiohttp import ClientSession, web
from pydantic import SecretStr
from schemathesis.core.result import Err

from edge_agent.api import ApiDeps, build_api
from edge_agent.api.openai_models import ChatCompletionRequest
from edge_agent.api.openapi import OPENAPI_PATH, build_openapi
from edge_agent.engines.local import LocalEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.serving import ServingPipeline
from edge_agent.settings import EdgeSettings
from tests.edge_agent.api.harness import N_CTX, Agent
from tests.support.apps import serving

in_module_loop = pytest.mark.asyncio(loop_scope="module")
"""The async tests share the module's loaded model and agent."""

KEY = "s3cret-key-for-tests"


def api(local: LocalEngine, **settings: Any) -> web.Application:
    edge_settings = EdgeSettings(**{"n_ctx": N_CTX, **settings})
    metrics = EdgeMetrics()
    pipeline = ServingPipeline.from_settings(
        edge_settings, local=local, cloud=None, metrics=metrics
    )
    return build_api(ApiDeps(settings=edge_settings, pipeline=pipeline, metrics=metrics))


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route, less aiohttp's implicit HEAD twin of each GET."""
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    heads = {path for method, path in routes if method == "HEAD"}
    assert heads <= {path for method, path in routes if method == "GET"}
    return {(method, path) for method, path in routes if method != "HEAD"}


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, ops in document["paths"].items() for m in ops}


async def fetch(http: ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{url}{OPENAPI_PATH}") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document: dict[str, Any] = await response.json()
        return document


@in_module_loop
async def test_documents_every_route_and_loads_in_schemathesis(
    http: ClientSession, local: LocalEngine
) -> None:
    app = api(local)
    routes = served_routes(app)
    async with serving(app) as port:
        document = await fetch(http, f"http://127.0.0.1:{port}")
    assert documented(document) == routes
    assert ("GET", OPENAPI_PATH) in routes
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    results = list(schema.get_all_operations())
    assert [r.err() for r in results if isinstance(r, Err)] == []
    assert len(results) == len(routes)


@in_module_loop
async def test_served_without_the_api_key(http: ClientSession, local: LocalEngine) -> None:
    async with serving(api(local, api_key=SecretStr(KEY))) as port:
        url = f"http://127.0.0.1:{port}"
        document = await fetch(http, url)  # no Authorization header
        async with http.get(f"{url}/v1/models") as response:
            assert response.status == 401
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = document["paths"]
    for exempt in (OPENAPI_PATH, "/healthz"):
        assert paths[exempt]["get"]["security"] == []
        assert "401" not in paths[exempt]["get"]["responses"]
    assert "401" in paths["/v1/models"]["get"]["responses"]
    assert "401" in paths["/api/chat"]["post"]["responses"]


@in_module_loop
async def test_without_a_key_none_is_required(http: ClientSession, agent: Agent) -> None:
    document = await fetch(http, agent.url)
    assert "security" not in document
    for ops in document["paths"].values():
        for op in ops.values():
            assert "401" not in op["responses"]


@in_module_loop
async def test_schemas_are_the_models_and_errors_the_dialects(
    http: ClientSession, agent: Agent
) -> None:
    document = await fetch(http, agent.url)
    schemas = document["components"]["schemas"]
    expected = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in expected.pop("$defs").items():
        assert schemas[name] == schema
    assert schemas["ChatCompletionRequest"] == expected
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    for path, error in (("/v1/chat/completions", "ErrorBody"), ("/api/chat", "OllamaErrorBody")):
        responses = document["paths"][path]["post"]["responses"]
        for status in ("400", "404", "503", "default"):
            content = responses[status]["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{error}"}
    # Only the route header the API reads; no cloud here, so 'cloud' is not offered.
    (header,) = chat["parameters"]
    assert (header["name"], header["in"]) == ("X-Tandem-Route", "header")
    assert header["schema"]["enum"] == ["local", "auto"]


def test_cloud_route_is_offered_with_a_cloud() -> None:
    router = web.UrlDispatcher()
    router.add_post("/v1/chat/completions", _unused)
    document = build_openapi(router.routes(), cloud=True, api_key=False)
    (header,) = document["paths"]["/v1/chat/completions"]["post"]["parameters"]
    assert header["schema"]["enum"] == ["local", "auto", "cloud"]


def test_an_undocumented_route_fails_the_build() -> None:
    router = web.UrlDispatcher()
    router.add_get("/v1/secret", _unused)
    with pytest.raises(LookupError, match="GET /v1/secret"):
        build_openapi(router.routes(), cloud=False, api_key=False)


async def _unused(request: web.Request) -> web.Response:
    raise AssertionError("never called")  # pragma: no cover
