"""``UpstreamHealth``: whether the engine in front of which the worker sits answers.

A worker is ready only while its engine answers: at start it waits for the engine (vLLM
takes minutes to load a large model) and registers only then; afterwards it asks the
engine's ``/models`` every ``interval_s``, and after ``unhealthy_after`` failed asks in a
row (or a failed request, which asks again at once) declares it down, so that the worker
reports not-ready and stops taking edges instead of hanging their streams. Listeners hear
every change (the app drains on down, resumes on up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

__all__ = ["UpstreamHealth"]

log = logging.getLogger(__name__)


class UpstreamHealth:
    """Probes an OpenAI-compatible engine's ``/models``."""

    def __init__(
        self, url: str, *, interval_s: float = 5.0, unhealthy_after: int = 3, timeout_s: float = 5.0
    ) -> None:
        self._models_url = url.rstrip("/") + "/models"
        self._interval_s = interval_s
        self._unhealthy_after = unhealthy_after
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._healthy = False
        self._failures = 0
        self._listeners: list[Callable[[bool], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self._healthy

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(healthy)`` whenever the engine goes down or comes back."""
        self._listeners.append(listener)

    async def probe(self, session: aiohttp.ClientSession) -> list[str] | None:
        """The engine's model ids, or ``None`` if it does not answer properly."""
        try:
            async with session.get(self._models_url, timeout=self._timeout) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return None
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]

    async def wait_until_up(self, session: aiohttp.ClientSession) -> list[str]:
        """Until the engine answers; its model ids. Says every so often that it waits."""
        attempt = 0
        while (models := await self.probe(session)) is None:
            if attempt % 12 == 0:
                log.info("waiting for the engine at %s to answer", self._models_url)
            attempt += 1
            await asyncio.sleep(self._interval_s)
        self._set(True)
        return models

    def start(self, session: aiohttp.ClientSession) -> None:
        """Keep probing in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._watch(session), name="upstream-health"
            )

    def failed(self, exc: BaseException) -> None:
        """A request could not reach the engine: probe now rather than at the next tick."""
        log.info("the engine did not answer a request (%s); checking it", exc.__class__.__name__)
        self._poke.set()

    async def _watch(self, session: aiohttp.ClientSession) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._poke.wait()
            self._poke.clear()
            if await self.probe(session) is not None:
                self._failures = 0
                self._set(True)
                continue
            self._failures += 1
            if self._failures >= self._unhealthy_after or not self._healthy:
                self._set(False)
            else:
                self._poke.set()  # ask again at once: a lost probe is not an outage

    def _set(self, healthy: bool) -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        if healthy:
            log.warning("the engine at %s answers again", self._models_url)
        else:
            log.error("the engine at %s stopped answering", self._models_url)
        for listener in self._listeners:
            listener(healthy)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
