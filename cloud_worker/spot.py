"""Spot preemption notices from the cloud's metadata service.

AWS gives two minutes' notice through IMDSv2 (a session token from
``PUT /latest/api/token``, then ``GET /latest/meta-data/spot/instance-action``: 404
until a stop or terminate is scheduled); GCP about thirty seconds through
``GET /computeMetadata/v1/instance/preempted`` (``TRUE`` once preempted, with the
``Metadata-Flavor: Google`` header); Azure about thirty seconds through Scheduled Events
(``GET /metadata/scheduledevents`` with ``Metadata: true``: an event of type
``Preempt``). Whichever, the worker reacts as to SIGTERM: it drains (see
``links.LinkAcceptor.drain``) and exits 0. ``detect`` tells which cloud a machine runs
on by asking each one's metadata service who it is. Base URLs are settings, so tests
point them at a fake metadata server on loopback, the one thing here no user runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Literal

import aiohttp

__all__ = [
    "DEFAULT_METADATA",
    "NOTICES",
    "Provider",
    "aws_notice",
    "azure_notice",
    "detect",
    "gcp_notice",
    "watch",
]

log = logging.getLogger(__name__)

Check = Callable[[aiohttp.ClientSession], Awaitable[str | None]]


def aws_notice(base_url: str) -> Check:
    """IMDSv2: the scheduled action (e.g. ``terminate``), or ``None``."""

    async def check(session: aiohttp.ClientSession) -> str | None:
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        async with session.put(f"{base_url}/latest/api/token", headers=headers) as resp:
            if resp.status != 200:
                return None
            token = await resp.text()
        url = f"{base_url}/latest/meta-data/spot/instance-action"
        async with session.get(url, headers={"X-aws-ec2-metadata-token": token}) as resp:
            if resp.status != 200:
                return None  # 404: nothing scheduled
            body = await resp.json(content_type=None)
            action = body.get("action") if isinstance(body, dict) else None
            return str(action) if action else "unknown"

    return check


def azure_notice(base_url: str) -> Check:
    """Azure Scheduled Events: ``preempt`` once a ``Preempt`` event is scheduled."""

    async def check(session: aiohttp.ClientSession) -> str | None:
        url = f"{base_url}/metadata/scheduledevents?api-version=2020-07-01"
        async with session.get(url, headers={"Metadata": "true"}) as resp:
            if resp.status != 200:
                return None
            body = await resp.json(content_type=None)
        events = body.get("Events") if isinstance(body, dict) else None
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict) and event.get("EventType") == "Preempt":
                return "preempt"
        return None

    return check


def gcp_notice(base_url: str) -> Check:
    """GCE: ``preempted`` once the instance is being preempted, else ``None``."""

    async def check(session: aiohttp.ClientSession) -> str | None:
        url = f"{base_url}/computeMetadata/v1/instance/preempted"
        async with session.get(url, headers={"Metadata-Flavor": "Google"}) as resp:
            if resp.status != 200:
                return None
            return "preempted" if (await resp.text()).strip().upper() == "TRUE" else None

    return check


Provider = Literal["aws", "gcp", "azure"]

DEFAULT_METADATA: Mapping[Provider, str] = MappingProxyType(
    {
        "aws": "http://169.254.169.254",
        "gcp": "http://metadata.google.internal",
        "azure": "http://169.254.169.254",
    }
)
"""Each provider's metadata service, as seen from its instances."""

NOTICES: Mapping[Provider, Callable[[str], Check]] = MappingProxyType(
    {"aws": aws_notice, "gcp": gcp_notice, "azure": azure_notice}
)


async def _is(provider: Provider, base_url: str, session: aiohttp.ClientSession) -> bool:
    """Whether ``base_url`` is ``provider``'s metadata service (its own handshake)."""
    if provider == "aws":
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        async with session.put(f"{base_url}/latest/api/token", headers=headers) as resp:
            return resp.status == 200
    if provider == "gcp":
        url = f"{base_url}/computeMetadata/v1/instance/id"
        async with session.get(url, headers={"Metadata-Flavor": "Google"}) as resp:
            return resp.status == 200 and resp.headers.get("Metadata-Flavor") == "Google"
    url = f"{base_url}/metadata/instance?api-version=2021-02-01"
    async with session.get(url, headers={"Metadata": "true"}) as resp:
        return resp.status == 200


async def detect(metadata_url: str | None = None, *, timeout_s: float = 2.0) -> Provider | None:
    """The cloud this machine runs on, or ``None`` (no metadata service answered).

    Each provider is asked in its own way, at ``metadata_url`` if given, else at its
    default address; a service that does not answer within ``timeout_s`` is not it.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for provider, default in DEFAULT_METADATA.items():
            base = (metadata_url or default).rstrip("/")
            try:
                if await _is(provider, base, session):
                    return provider
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("%s metadata service at %s: %s", provider, base, exc.__class__.__name__)
    return None


async def watch(check: Check, on_notice: Callable[[str], None], *, poll_s: float) -> None:
    """Poll ``check`` every ``poll_s`` until it reports a notice; then ``on_notice`` once.

    A metadata service that is slow or down is logged and polled again: missing one
    poll costs ``poll_s`` of the grace period, not the worker.
    """
    timeout = aiohttp.ClientTimeout(total=max(1.0, poll_s))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            try:
                action = await check(session)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.debug("metadata service did not answer: %s", exc.__class__.__name__)
                action = None
            if action is not None:
                log.warning("spot preemption notice (%s): draining", action)
                on_notice(action)
                return
            await asyncio.sleep(poll_s)
