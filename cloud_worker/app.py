"""Wiring of the worker: backend, signaling client, link acceptor, health/metrics HTTP.

``create_app`` builds everything from settings; the long-lived parts start and stop in
the application's ``cleanup_ctx`` so that Ctrl-C (or SIGTERM from systemd) unwinds them
in order: stop taking offers, close sessions, free the model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from cloud_worker.backends import Backend
from cloud_worker.backends.health import UpstreamHealth
from cloud_worker.backends.llama import LlamaBackend
from cloud_worker.backends.openai import Continuation, OpenAIBackend, UpstreamConfig
from cloud_worker.links import LinkAcceptor
from cloud_worker.metrics import WorkerMetrics
from cloud_worker.settings import WorkerSettings
from cloud_worker.spot import DEFAULT_METADATA, NOTICES, detect, watch
from inference import RunnerConfig, resolve_model
from inference.templates import ChatTemplate
from link import SignalingClient
from shared.messages import LoadReport, Message, Register

__all__ = ["WorkerParts", "create_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerParts:
    backend: Backend
    signaling: SignalingClient
    acceptor: LinkAcceptor
    metrics: WorkerMetrics
    settings: WorkerSettings


PARTS = web.AppKey("parts", WorkerParts)


def build_backend(settings: WorkerSettings) -> Backend:
    """The backend ``--backend`` names, configured from ``settings``."""
    if settings.backend == "openai":
        return _openai_backend(settings)
    model = resolve_model(settings.model)
    config = RunnerConfig(
        model_path=model,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_gpu_layers=settings.n_gpu_layers,
        max_waiting=settings.max_queue,
        max_queued_chunks=settings.max_queued_chunks,
    )
    return LlamaBackend(
        config,
        parallel=settings.parallel,
        max_queue=settings.max_queue,
        served_name=settings.served_name,
    )


def _openai_backend(settings: WorkerSettings) -> OpenAIBackend:
    key_file = settings.upstream_api_key_file
    api_key = key_file.read_text(encoding="utf-8").strip() if key_file is not None else None
    template_path = settings.upstream_chat_template
    config = UpstreamConfig(
        url=settings.upstream_url,
        model=settings.upstream_model,
        api_key=api_key or None,
        max_concurrency=settings.max_concurrency,
        max_queue=settings.max_queue,
        continuation=Continuation(settings.upstream_continuation),
        chat_template=ChatTemplate.load(template_path) if template_path is not None else None,
        first_token_timeout_s=settings.upstream_first_token_timeout_s,
        token_timeout_s=settings.upstream_token_timeout_s,
    )
    health = UpstreamHealth(
        settings.upstream_url,
        interval_s=settings.upstream_health_interval_s,
        unhealthy_after=settings.upstream_unhealthy_after,
    )
    return OpenAIBackend(config, health)


def create_app(settings: WorkerSettings, *, backend: Backend | None = None) -> web.Application:
    """The worker as an aiohttp app: /healthz and /metrics, everything else in the background."""
    token = settings.token_source()
    if token is None:
        raise ValueError("a worker token is required (--token, TANDEM_TOKEN or --token-file)")
    the_backend = backend or build_backend(settings)
    metrics = WorkerMetrics(active=lambda: the_backend.active)
    signaling: SignalingClient

    async def send(message: Message) -> None:
        await signaling.send(message)

    acceptor = LinkAcceptor(
        settings,
        the_backend,
        metrics,
        send=send,
        ice_servers=lambda: signaling.ice_servers,
        accept_relay=lambda request, model: signaling.relays.accept(
            request,
            model=model,
            max_frame_bytes=settings.max_frame_bytes,
            max_queued_frames=settings.max_queued_frames,
        ),
    )
    metrics.draining.set_function(lambda: float(acceptor.draining))

    def hello() -> tuple[Message, ...]:
        register = Register(models=the_backend.models, capacity=the_backend.capacity)
        if acceptor.draining:  # a signaling restart must not undo a pause or a drain
            return (register, LoadReport(active=the_backend.active, draining=True))
        return (register,)

    signaling = SignalingClient(
        settings.signaling,
        token,
        on_message=acceptor.handle,
        hello=hello,
        reconnect_max_s=settings.reconnect_max_s,
        ca_file=settings.ca_file,
        insecure_signaling=settings.insecure_signaling,
    )
    app = web.Application()
    app[PARTS] = WorkerParts(
        backend=the_backend,
        signaling=signaling,
        acceptor=acceptor,
        metrics=metrics,
        settings=settings,
    )
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _preempted(action: str) -> None:
    # One shutdown path for every reason to stop: the notice becomes our own SIGTERM,
    # which aiohttp turns into a graceful exit whose cleanup drains.
    os.kill(os.getpid(), signal.SIGTERM)


async def _start(parts: WorkerParts) -> None:
    """Load first, then register: signaling must never send us an edge we cannot serve."""
    await parts.backend.load()
    log.info(
        "worker serving %s with capacity %d",
        ", ".join(parts.backend.models),
        parts.backend.capacity,
    )
    parts.backend.on_health_change(parts.acceptor.engine_health)
    parts.acceptor.start()
    parts.signaling.start()
    settings = parts.settings
    if settings.spot == "none":
        return
    provider = settings.spot
    if provider == "auto":
        found = await detect(settings.spot_metadata_url)
        if found is None:
            log.warning("--spot auto: no cloud metadata service answered; not watching")
            return
        provider = found
    base = (settings.spot_metadata_url or DEFAULT_METADATA[provider]).rstrip("/")
    log.info("watching %s (%s) for spot preemption notices", base, provider)
    await watch(NOTICES[provider](base), _preempted, poll_s=settings.spot_poll_s)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    parts = app[PARTS]
    startup = asyncio.get_running_loop().create_task(_start(parts), name="worker-startup")
    startup.add_done_callback(_report_startup)
    try:
        yield
    finally:
        # SIGTERM (systemd stop, spot preemption) lands here: drain before closing.
        await parts.acceptor.drain(parts.settings.drain_grace_s)
        startup.cancel()
        await asyncio.gather(startup, return_exceptions=True)
        await parts.signaling.aclose()
        await parts.acceptor.aclose()
        await parts.backend.aclose()


def _report_startup(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the worker failed to start (model not loaded): %s", task.exception())


async def _healthz(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    body = {
        "status": {"ready": "ok", "loading": "loading", "down": "engine-down"}[parts.backend.state],
        "models": list(parts.backend.models),
        "signaling": "connected" if parts.signaling.connected else "disconnected",
        "sessions": parts.acceptor.sessions,
        "active_streams": parts.backend.active,
    }
    return web.json_response(body, status=200 if parts.backend.ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[PARTS].metrics.render()
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
