"""Wiring of the edge: local engine, optional cloud (signaling, peer pool, remote engine),
the serving pipeline (router, budget, metrics), HTTP API. Only wiring: behaviour lives
in the modules it connects.

The model loads in the background so that ``/healthz`` can say 503 "loading" meanwhile,
and the peer pool starts at once so that the first escalation finds a warm channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from edge_agent.api import ApiDeps, build_api
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig, StreamBounds
from edge_agent.serving import ServingPipeline
from edge_agent.settings import EdgeSettings
from inference import LlamaRunner, RunnerConfig, resolve_model
from link import IcePolicy, SignalingClient

__all__ = ["create_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeParts:
    local: LocalEngine
    signaling: SignalingClient | None
    cloud: RemoteEngine | None


PARTS = web.AppKey("edge_parts", EdgeParts)


def create_app(settings: EdgeSettings) -> web.Application:
    """Build the edge from its settings (no I/O until the app starts)."""
    model = resolve_model(settings.model)
    runner = LlamaRunner(
        RunnerConfig(
            model_path=model,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            max_waiting=settings.max_queue,
            max_queued_chunks=settings.max_queued_chunks,
            kv_cache_bytes=settings.kv_cache_mb * 1024 * 1024,
        )
    )
    local = LocalEngine(runner)
    metrics = EdgeMetrics()
    signaling: SignalingClient | None = None
    cloud: RemoteEngine | None = None
    if settings.signaling:
        token = settings.token_source()
        if token is None:
            raise ValueError(
                "--signaling needs this edge's peer token (--token, TANDEM_TOKEN or --token-file)"
            )
        signaling = SignalingClient(
            settings.signaling,
            token,
            reconnect_max_s=settings.reconnect_max_s,
            ca_file=settings.ca_file,
            insecure_signaling=settings.insecure_signaling,
        )
        pool = PeerPool(
            signaling,
            metrics,
            PoolConfig(
                model=settings.cloud_model,
                connect_timeout_s=settings.connect_timeout_s,
                ice_deadline_s=settings.ice_deadline_s,
                first_token_timeout_s=settings.first_token_timeout_s,
                token_timeout_s=settings.token_timeout_s,
                max_frame_bytes=settings.max_frame_bytes,
                max_queued_frames=settings.max_queued_frames,
                heartbeat_s=settings.heartbeat_s,
                dead_after_s=settings.dead_after_s,
                policy=IcePolicy.from_settings(settings),
                force_relay=settings.force_relay,
                relay_first=settings.relay_first,
                upgrade_interval_s=settings.relay_upgrade_interval_s,
                upgrade_timeout_s=settings.upgrade_timeout_s,
                address_poll_s=settings.address_poll_s,
                network_change_check_s=settings.network_change_check_s,
                reconnect_max_s=settings.reconnect_max_s,
                max_queued_chunks=settings.max_queued_chunks,
                warm_standby=settings.warm_standby,
                bounds=StreamBounds(
                    max_stream_tokens=settings.max_stream_tokens,
                    max_chars_per_token=settings.max_chars_per_token,
                ),
            ),
        )
        cloud = RemoteEngine(pool, model=settings.cloud_model)
    pipeline = ServingPipeline.from_settings(settings, local=local, cloud=cloud, metrics=metrics)
    app = build_api(ApiDeps(settings=settings, pipeline=pipeline, metrics=metrics))
    app[PARTS] = EdgeParts(local=local, signaling=signaling, cloud=cloud)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    parts = app[PARTS]
    loading = asyncio.get_running_loop().create_task(parts.local.load(), name="load-local-model")
    loading.add_done_callback(_report_load)
    if parts.signaling is not None and parts.cloud is not None:
        parts.signaling.start()
        parts.cloud.start()
    try:
        yield
    finally:
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        if parts.cloud is not None:
            await parts.cloud.aclose()
        if parts.signaling is not None:
            await parts.signaling.aclose()
        await parts.local.aclose()


def _report_load(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the local model failed to load: %s", task.exception())
