"""Spot preemption notices from the cloud's metadata service.

AWS gives two minutes' notice through IMDSv2 (a session token from
``PUT /latest/api/token``, then ``GET /latest/meta-data/spot/instance-action``: 404
until a stop or terminate is scheduled); GCP about thirty seconds through
``GET /computeMetadata/v1/instance/preempted`` (``TRUE`` once preempted, with the
``Metadata-Flavor: Google`` header). Either way the worker reacts as to SIGTERM: it
drains (see ``links.LinkAcceptor.drain``) and exits 0. Base URLs are settings, so tests
point them at a fake metadata server on loopback, the one thing here no user runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp

__all__ = ["aws_notice", "gcp_notice", "watch"]

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


def gcp_notice(base_url: str) -> Check:
    """GCE: ``preempted`` once the instance is being preempted, else ``None``."""

    async def check(session: aiohttp.ClientSession) -> str | None:
        url = f"{base_url}/computeMetadata/v1/instance/preempted"
        async with session.get(url, headers={"Metadata-Flavor": "Google"}) as resp:
            if resp.status != 200:
                return None
            return "preempted" if (await resp.text()).strip().upper() == "TRUE" else None

    return check


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
