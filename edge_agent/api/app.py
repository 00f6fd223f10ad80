"""``build_api(deps)``: the edge agent's HTTP application, wired from its parts.

Only wiring lives here. The caller owns the engines (it loads the local model, runs
the peer pool) and their lifecycle, and builds the serving pipeline over them; the app
only borrows it, so tests and the real ``edge_agent.app`` build it the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from edge_agent.api.access_log import RecentRequests, access_log_middleware
from edge_agent.api.browser import BrowserPolicy, browser_guard, cors_headers
from edge_agent.api.embeddings import EmbeddingRoutes
from edge_agent.api.health import HealthRoutes
from edge_agent.api.limits import BodyLimits
from edge_agent.api.llama_server import LlamaServerRoutes
from edge_agent.api.local_model import LocalModel
from edge_agent.api.middleware import api_key_middleware, outcome_middleware
from edge_agent.api.ollama_compat import OllamaRoutes
from edge_agent.api.ollama_probe import OllamaProbeRoutes
from edge_agent.api.openai_compat import OpenAIRoutes
from edge_agent.api.openapi import OpenApiRoute, app_version
from edge_agent.api.status import StatusRoutes
from edge_agent.metrics import EdgeMetrics
from edge_agent.serving import ModelNames, ServingPipeline
from edge_agent.settings import EdgeSettings

__all__ = ["LOCAL_MODEL", "ApiDeps", "build_api"]

LOCAL_MODEL = web.AppKey("tandem_local_model", LocalModel)
"""The app's ``LocalModel`` (embedding context, tokenizer, file facts), for the process
and tests that need to see its state."""


@dataclass(frozen=True)
class ApiDeps:
    """Everything the HTTP layer uses; built by the process's ``app.py``."""

    settings: EdgeSettings
    pipeline: ServingPipeline
    metrics: EdgeMetrics


def build_api(deps: ApiDeps) -> web.Application:
    """The aiohttp application serving the OpenAI- and Ollama-compatible API."""
    browsers = BrowserPolicy.from_settings(deps.settings)
    recent = RecentRequests(deps.settings.status_recent_requests)
    middlewares: list[Middleware] = [
        access_log_middleware(recent),  # outermost: one line per request, its final status
        outcome_middleware(deps.metrics),
        browser_guard(browsers),
    ]
    if deps.settings.api_key is not None:
        middlewares.append(api_key_middleware(deps.settings.api_key))
    app = web.Application(client_max_size=deps.settings.max_body_bytes, middlewares=middlewares)
    app.on_response_prepare.append(cors_headers(browsers))
    pipeline = deps.pipeline
    cloud = pipeline.cloud
    names = ModelNames(
        local_model=pipeline.local.model,
        cloud_model=(lambda: cloud.model) if cloud is not None else None,
        default_route=deps.settings.default_route,
    )
    created = int(time.time())
    limits = BodyLimits.from_settings(deps.settings)
    OpenAIRoutes(pipeline, names, created=created, limits=limits).add_to(app.router)
    OllamaRoutes(pipeline, names, limits=limits).add_to(app.router)
    HealthRoutes(local=pipeline.local, cloud=cloud, metrics=deps.metrics).add_to(app.router)
    StatusRoutes(pipeline, recent, size=deps.settings.status_recent_requests).add_to(app.router)
    # Embeddings and the probes need the local GGUF itself (its header, tokenizer, an
    # embedding context): created here, closed with the app.
    local_model = LocalModel.from_settings(deps.settings, pipeline.local)
    app[LOCAL_MODEL] = local_model
    app.on_cleanup.append(lambda _: local_model.aclose())
    timeout_s = deps.settings.request_timeout_s
    EmbeddingRoutes(local_model, names, timeout_s=timeout_s).add_to(app.router)
    OllamaProbeRoutes(local_model, names).add_to(app.router)
    LlamaServerRoutes(local_model, build_info=f"tandem {app_version()}").add_to(app.router)
    # Last: it documents the routes above and refuses any it has no description for.
    api_key = deps.settings.api_key is not None
    OpenApiRoute(cloud=cloud is not None, api_key=api_key).add_to(app.router)
    return app
