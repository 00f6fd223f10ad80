"""The typed keys under which ``create_app`` hangs one app's parts on the app itself."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from signaling.auth_limit import FailureLimiter
from signaling.broker import Broker
from signaling.metrics import SignalingMetrics
from signaling.peer_hub import PeerHub
from signaling.settings import SignalingSettings

__all__ = ["BROKER_KEY", "CLOCK_KEY", "HUB_KEY", "LIMITER_KEY", "METRICS_KEY", "SETTINGS_KEY"]

SETTINGS_KEY = web.AppKey("settings", SignalingSettings)
BROKER_KEY = web.AppKey("broker", Broker)
METRICS_KEY = web.AppKey("metrics", SignalingMetrics)
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
LIMITER_KEY = web.AppKey("auth_limiter", FailureLimiter)
HUB_KEY = web.AppKey("peer_hub", PeerHub)
