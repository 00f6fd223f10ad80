"""When, and to which URL, a ``SignalingClient`` reconnects.

Separate from the connection itself (``link.signaling_client``) because it is a policy
of its own: several URLs (instances of one signaling cluster sharing Redis) are tried
in turn, the client stays on the one that works and, when its connection is lost or an
attempt fails, moves to the next; the jittered exponential backoff grows only after a
whole round of URLs failed, so that peers never reconnect in lockstep. A network change
(``retry_now``) cuts any wait short: a new path may reach signaling where the old one
could not. How long to wait also depends on how the last attempt ended
(``after_error``, ``after_close``): what a quick retry will not cure (a refused token,
a certificate that fails verification, a peer id held elsewhere) waits the longest.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import aiohttp

from shared.close_codes import CloseCode

__all__ = ["Backoff", "signaling_urls"]

log = logging.getLogger(__name__)


class Backoff:
    """The URL to connect to next, and the wait before it."""

    def __init__(self, urls: tuple[str, ...], *, min_s: float, max_s: float) -> None:
        self._urls = urls
        self._index = 0  # the URL in use (or tried next)
        self._min_s = min_s
        self._max_s = max_s
        self.delay = min_s
        """The longest wait before the next attempt, unless that attempt asks otherwise."""
        self._failed_in_round = 0  # attempts in a row that were not welcomed
        self._now = asyncio.Event()  # retry_now(): the next attempt without a backoff

    @property
    def url(self) -> str:
        """The URL in use, or tried next."""
        return self._urls[self._index]

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def longest(self) -> float:
        """The wait after a failure that waiting briefly will not cure."""
        return self._max_s

    def retry_now(self) -> None:
        """Make the next attempt at once (and cut a wait under way short)."""
        self._now.set()

    def welcomed(self) -> None:
        """An attempt got as far as ``Welcome``: a ``retry_now`` made during it is spent."""
        self._now.clear()

    async def wait(self, delay: float, *, welcomed: bool) -> None:
        """Between two attempts: ``delay`` is the wait the ended attempt asks for at most
        (the current ``delay``, or the shortest or longest after what it learned),
        ``welcomed`` whether it got as far as ``Welcome``."""
        self._failed_in_round = 0 if welcomed else self._failed_in_round + 1
        if self._now.is_set():
            # A network change: this URL was fine, the path to it is new. One host
            # reconnecting is no stampede: no jitter, no backoff.
            self._now.clear()
            self.delay = self._min_s
            return
        if len(self._urls) > 1:
            lost = self.url
            self._index = (self._index + 1) % len(self._urls)
            if self._failed_in_round < len(self._urls):
                # Another instance may be up: try it soon, back off only once every URL
                # has failed in a row.
                log.info("signaling at %s lost; trying %s next", lost, self.url)
                self.delay = delay
                await self._pause(random.uniform(0, self._min_s))
                return
            self._failed_in_round = 0
        wait = random.uniform(delay / 2, delay)  # jitter: peers must not reconnect in lockstep
        log.info("reconnecting to signaling at %s in %.1f s", self.url, wait)
        if await self._pause(wait):
            self.delay = self._min_s
            return
        self.delay = min(delay * 2, self._max_s)

    def after_error(
        self, exc: aiohttp.ClientError | OSError | TimeoutError, delay: float
    ) -> tuple[str, float]:
        """Why an attempt that raised ``exc`` failed (one line, for ``last_error``), and
        the wait it asks for: the longest for what retrying soon will not cure."""
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            if exc.status == 401:
                log.error("signaling refused this peer's token (expired or wrong secret?)")
                return "signaling refused this peer's token", self._max_s
            if exc.status == 429:
                log.error("signaling is refusing failed logins from this address for a while")
                return "signaling refuses failed logins from this address for now", self._max_s
            log.warning("signaling handshake failed: HTTP %s", exc.status)
            return f"signaling handshake failed: HTTP {exc.status}", delay
        if isinstance(exc, aiohttp.ClientSSLError):
            # Never a fallback to plaintext: the token is only ever sent over a verified
            # connection. Retried slowly, in case the certificate is fixed.
            why = _tls_failure(self.url, exc)
            log.error("%s", why)
            return why, self._max_s
        log.warning("cannot reach signaling at %s: %s", self.url, exc.__class__.__name__)
        return f"cannot reach signaling: {exc.__class__.__name__}", delay

    def after_close(self, code: int | None, delay: float, *, welcomed: bool) -> float:
        """The wait a connection that signaling closed with ``code`` asks for."""
        if code == CloseCode.TOKEN_EXPIRED:
            log.warning("signaling closed the connection: this peer's token expired")
            return self._min_s  # a --token-file may hold a renewed one already
        if code == CloseCode.RESUMED:
            log.warning("signaling closed this connection: a newer one presented its resume secret")
            return self._min_s
        if code == CloseCode.PEER_ID_IN_USE:
            log.error(
                "signaling refused this peer: its peer id is connected from elsewhere "
                "(two devices sharing one token?); retrying slowly"
            )
            return self._max_s
        return self._min_s if welcomed else delay

    async def _pause(self, wait_s: float) -> bool:
        """Wait out a backoff; cut short (``True``) by ``retry_now``: a new network may
        reach signaling where the old one could not."""
        try:
            async with asyncio.timeout(wait_s):
                await self._now.wait()
        except TimeoutError:
            return False
        self._now.clear()
        return True


def signaling_urls(urls: str | Sequence[str]) -> tuple[str, ...]:
    """The URLs of ``--signaling`` (one, a comma-separated list, or a list of either), in
    order, without repeats; ``ValueError`` if there are none."""
    parts = [urls] if isinstance(urls, str) else list(urls)
    found: list[str] = []
    for part in parts:
        for url in part.split(","):
            if url.strip() and url.strip() not in found:
                found.append(url.strip())
    if not found:
        raise ValueError("no signaling URL given")
    return tuple(found)


def _tls_failure(url: str, exc: aiohttp.ClientSSLError) -> str:
    """One line naming what TLS refused, and the remedy."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        why = f"certificate verify failed: {getattr(cause, 'verify_message', None) or cause}"
    else:
        why = f"TLS handshake failed: {exc.os_error}"
    return (
        f"signaling at {url}: {why}. Not connecting (no plaintext fallback): check that "
        "--ca-file names the CA that signed signaling's certificate, and the URL's host "
        "is in that certificate"
    )
