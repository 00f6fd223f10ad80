"""``SignalingClient``: a peer's WebSocket to the signaling server, kept up forever.

Both edge and worker hold one. It authenticates with the peer token (an
``Authorization`` header: tokens never go in URLs), fetched anew for every (re)connect
(``--token-file`` is re-read, so a renewed token needs no restart: signaling closes a
connection whose token expired, code 4001), receives ``Welcome`` (this peer's
ICE servers), replays the caller's hello messages after every (re)connect (a worker's
``Register``), and reconnects with jittered exponential backoff. Offers wait for their
answer through ``request_answer``; everything else goes to ``on_message``.

Data channels already open keep working while signaling is down: nothing here touches
them.

Several URLs (a list, or one comma-separated string: instances of one signaling cluster
sharing Redis) are tried in turn: the client stays on the one that works and, when its
connection is lost or an attempt fails, moves to the next; the backoff grows only after
a whole round of URLs failed. Logs name the URL in use.

Across a network the URL is ``wss://``, verified against the system CAs or ``ca_file``;
plaintext ``ws://`` is refused at construction unless it names this host or
``insecure_signaling`` is set (``link.tls``). A certificate that fails verification is
an error, retried at the longest backoff, never a fallback to plaintext. Relayed
sessions are keyed here (``link.relay_crypto``): the edge's key goes in ``RelayOpen``,
the worker's in ``RelayAccept``.

A network change (``reconnect``) drops the connection and reconnects at once, to the
same URL, skipping any backoff. Every reconnect presents the resume secret of the last
``Welcome`` (``X-Tandem-Resume``; held in memory, never logged): signaling then replaces
this peer's old connection, if it still lists one, at once instead of first probing it
for seconds (``signaling.resume``).

Its state is one ``SignalingState``, changed only by ``_set_state``: ``CLOSED`` until
``start``, ``CONNECTING`` while it (re)connects or waits to, ``CONNECTED`` from this
connection's ``Welcome`` until the connection is lost, ``CLOSED`` again after ``aclose``.
``connected`` and ``wait_connected`` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import aiohttp

from link.framed import DEFAULT_QUEUED_FRAMES
from link.relay_crypto import RelayCipher, RelayHandshake, RelayKeyRefused
from link.relay_link import RelayLink
from link.tls import client_ssl_context
from shared.close_codes import CloseCode
from shared.codec import decode, encode
from shared.errors import ProtocolError, TandemError
from shared.messages import (
    RESUME_HEADER,
    Answer,
    ErrorCode,
    IceServer,
    Message,
    Offer,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
    SignalError,
    Welcome,
)

__all__ = [
    "SignalingClient",
    "SignalingRefused",
    "SignalingState",
    "SignalingUnavailable",
    "signaling_urls",
]

log = logging.getLogger(__name__)

R = TypeVar("R", Answer, RelayAccept)


class SignalingState(StrEnum):
    """Where a ``SignalingClient`` is."""

    CLOSED = "closed"
    """Not started, or stopped by ``aclose``."""
    CONNECTING = "connecting"
    """Connecting, or waiting to reconnect (jittered backoff)."""
    CONNECTED = "connected"
    """Authenticated and welcomed on the current connection: offers can be sent."""


class SignalingUnavailable(TandemError):
    """Not connected to signaling, or it did not answer in time."""


class SignalingRefused(TandemError):
    """Signaling answered an offer with an error (e.g. no worker serves the model)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class SignalingClient:
    """One authenticated, self-healing WebSocket to signaling."""

    def __init__(
        self,
        url: str | Sequence[str],
        token: str | Callable[[], str],
        *,
        on_message: Callable[[Message], Awaitable[None]] | None = None,
        hello: Callable[[], Sequence[Message]] = tuple,
        max_frame_bytes: int = 65536,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        heartbeat_s: float = 15.0,
        ca_file: Path | None = None,
        insecure_signaling: bool = False,
    ) -> None:
        """``InsecureSignaling`` (a ``ValueError``) for a URL that may not be used."""
        self._urls = signaling_urls(url)
        self._ssl = {
            u: client_ssl_context(u, ca_file=ca_file, insecure=insecure_signaling)
            for u in self._urls
        }
        self._index = 0  # the URL in use (or tried next)
        self._token = token
        self._on_message = on_message
        self._hello = hello
        self._max_frame_bytes = max_frame_bytes
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._connect_timeout_s = connect_timeout_s
        self._heartbeat_s = heartbeat_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._welcome: Welcome | None = None
        self._state = SignalingState.CLOSED
        self._changed = asyncio.Event()  # set, then replaced, on every state change
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._pending_relays: dict[str, asyncio.Future[RelayAccept]] = {}
        self._handshakes: dict[str, RelayHandshake] = {}
        self._relays: dict[str, RelayLink] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_error: str | None = None
        self._welcomes = 0  # connections welcomed so far (a lost one is not a failed one)
        self._resume: str | None = None  # the last Welcome's resume secret
        self._now = asyncio.Event()  # reconnect(): the next attempt without a backoff

    @property
    def url(self) -> str:
        """The signaling URL in use, or tried next."""
        return self._urls[self._index]

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def last_error(self) -> str | None:
        """Why the latest connection attempt failed (``None`` once one is welcomed)."""
        return self._last_error

    @property
    def state(self) -> SignalingState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is SignalingState.CONNECTED

    def _set_state(self, state: SignalingState) -> None:
        """The one place the state changes: logged, waiters woken."""
        if state is self._state:
            return
        log.debug("signaling client: %s -> %s", self._state.value, state.value)
        self._state = state
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def peer_id(self) -> str | None:
        return self._welcome.peer_id if self._welcome else None

    @property
    def ice_servers(self) -> tuple[IceServer, ...]:
        return self._welcome.ice_servers if self._welcome else ()

    def start(self) -> None:
        """Start the connect/reconnect loop (owned here, stopped by ``aclose``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="signaling-client"
            )

    async def wait_connected(self, timeout_s: float) -> None:
        """Until ``CONNECTED``; ``SignalingUnavailable`` after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._state is not SignalingState.CONNECTED:
                    await self._changed.wait()
        except TimeoutError as exc:
            raise SignalingUnavailable(f"not connected to signaling at {self.url}") from exc

    async def send(self, message: Message) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise SignalingUnavailable("not connected to signaling")
        try:
            await ws.send_bytes(encode(message))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise SignalingUnavailable("signaling connection lost while sending") from exc

    async def request_answer(self, offer: Offer, timeout_s: float) -> Answer:
        """Send ``offer`` and wait for its ``Answer``; ``SignalingRefused`` on a refusal."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[offer.session_id] = future
        try:
            await self.send(offer)
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError as exc:
            raise SignalingUnavailable("no answer to the offer in time") from exc
        finally:
            self._pending.pop(offer.session_id, None)

    def relay_link(
        self,
        session_id: str,
        *,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        cipher: RelayCipher | None = None,
        label: str = "",
    ) -> RelayLink:
        """A link for relayed session ``session_id``; its frames are routed to it from now
        on. It carries nothing until it has a ``cipher`` (here, or ``RelayLink.secure``)."""
        link = RelayLink(
            session_id,
            self.send,
            on_close=self._forget_relay,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            cipher=cipher,
            label=label,
        )
        self._relays[session_id] = link
        return link

    def _forget_relay(self, session_id: str) -> None:
        self._relays.pop(session_id, None)

    async def accept_relay(
        self,
        request: RelayOpen,
        *,
        model: str,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        label: str = "",
    ) -> RelayLink:
        """The worker's side of ``open_relay``: key the session from the edge's
        ``request.key``, answer ``RelayAccept`` with ours, return the link.

        ``RelayKeyRefused`` (after telling the edge, with ``RelayClose``) if the edge
        sent no usable key: a relayed session is end-to-end encrypted or does not exist.
        """
        handshake = RelayHandshake(request.session_id, Role.WORKER)
        try:
            cipher = handshake.cipher(request.key)
        except RelayKeyRefused as exc:
            with contextlib.suppress(SignalingUnavailable):
                await self.send(RelayClose(session_id=request.session_id, reason=str(exc)[:256]))
            raise
        link = self.relay_link(
            request.session_id,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            cipher=cipher,
            label=label,
        )
        try:
            await self.send(
                RelayAccept(session_id=request.session_id, model=model, key=handshake.public_key)
            )
        except BaseException:
            await link.aclose()
            raise
        return link

    async def open_relay(
        self,
        session_id: str,
        *,
        model: str,
        timeout_s: float,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        avoid: tuple[str, ...] = (),
    ) -> tuple[RelayLink, RelayAccept]:
        """Ask signaling for a relayed session to a worker (none of ``avoid``); the link
        once one accepts."""
        future: asyncio.Future[RelayAccept] = asyncio.get_running_loop().create_future()
        handshake = RelayHandshake(session_id, Role.EDGE)
        self._pending_relays[session_id] = future
        self._handshakes[session_id] = handshake
        link = self.relay_link(
            session_id, max_frame_bytes=max_frame_bytes, max_queued_frames=max_queued_frames
        )
        try:
            opening = RelayOpen(
                session_id=session_id, model=model, avoid=avoid, key=handshake.public_key
            )
            await self.send(opening)
            async with asyncio.timeout(timeout_s):
                accept = await future
        except BaseException as exc:
            await link.aclose()
            if isinstance(exc, TimeoutError):
                raise SignalingUnavailable("no worker accepted the relay in time") from exc
            raise
        finally:
            self._pending_relays.pop(session_id, None)
            self._handshakes.pop(session_id, None)
        link.rename(accept.peer_id)
        return link, accept

    def _new_session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s)
        return aiohttp.ClientSession(timeout=timeout)

    async def reconnect(self) -> None:
        """Drop the connection now and open a new one: the local address it was made
        from is gone (Wi-Fi to LTE, a DHCP renewal), so it is dead, though TCP and the
        heartbeat would take tens of seconds to tell. Relayed sessions on it end."""
        old = self._session
        if self._task is None or old is None:
            return
        self._session = self._new_session()  # the connect loop's next attempt uses it
        self._now.set()
        log.info("dropping the signaling connection: the network changed")
        if old.connector is not None:
            await old.connector.close(abort_ssl=True)  # no TLS goodbye on a dead path
        await old.close()

    def retry_now(self) -> None:
        """The network changed without taking the connection's address away (an address
        was added): if waiting to reconnect, try at once. Nothing changes while
        connected."""
        if self._task is not None and self._state is SignalingState.CONNECTING:
            self._now.set()

    async def _run(self) -> None:
        delay = self._reconnect_min_s
        self._session = self._new_session()
        try:
            failed_in_round = 0
            while True:
                self._set_state(SignalingState.CONNECTING)
                before = self._welcomes
                delay = await self._attempt(delay)
                self._disconnected()
                failed_in_round = 0 if self._welcomes > before else failed_in_round + 1
                if self._now.is_set():
                    # A network change: this URL was fine, the path to it is new. One
                    # host reconnecting is no stampede: no jitter, no backoff.
                    self._now.clear()
                    delay = self._reconnect_min_s
                    continue
                if len(self._urls) > 1:
                    lost = self.url
                    self._index = (self._index + 1) % len(self._urls)
                    if failed_in_round < len(self._urls):
                        # Another instance may be up: try it soon, back off only once
                        # every URL has failed in a row.
                        log.info("signaling at %s lost; trying %s next", lost, self.url)
                        await self._pause(random.uniform(0, self._reconnect_min_s))
                        continue
                    failed_in_round = 0
                wait = random.uniform(
                    delay / 2, delay
                )  # jitter: peers must not reconnect in lockstep
                log.info("reconnecting to signaling at %s in %.1f s", self.url, wait)
                if await self._pause(wait):
                    delay = self._reconnect_min_s
                    continue
                delay = min(delay * 2, self._reconnect_max_s)
        finally:
            self._set_state(SignalingState.CLOSED)
            self._disconnected()
            await self._session.close()

    async def _pause(self, wait_s: float) -> bool:
        """Wait out a backoff; cut short (``True``) by ``reconnect``: a new network may
        reach signaling where the old one could not."""
        try:
            async with asyncio.timeout(wait_s):
                await self._now.wait()
        except TimeoutError:
            return False
        self._now.clear()
        return True

    async def _attempt(self, delay: float) -> float:
        """One connection, from reading the token to its end; the next backoff delay."""
        try:
            token = self._token() if callable(self._token) else self._token
        except (OSError, ValueError) as exc:  # the token file is missing, empty, garbled
            log.error("cannot read this peer's token: %s", exc)
            return self._reconnect_max_s
        try:
            welcomed, code = await self._connect_once(token)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                self._last_error = "signaling refused this peer's token"
                log.error("signaling refused this peer's token (expired or wrong secret?)")
                return self._reconnect_max_s
            if exc.status == 429:
                self._last_error = "signaling refuses failed logins from this address for now"
                log.error("signaling is refusing failed logins from this address for a while")
                return self._reconnect_max_s
            self._last_error = f"signaling handshake failed: HTTP {exc.status}"
            log.warning("signaling handshake failed: HTTP %s", exc.status)
            return delay
        except aiohttp.ClientSSLError as exc:
            # Never a fallback to plaintext: the token is only ever sent over a verified
            # connection. Retried slowly, in case the certificate is fixed.
            self._last_error = _tls_failure(self.url, exc)
            log.error("%s", self._last_error)
            return self._reconnect_max_s
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._last_error = f"cannot reach signaling: {exc.__class__.__name__}"
            log.warning("cannot reach signaling at %s: %s", self.url, exc.__class__.__name__)
            return delay
        if code == CloseCode.TOKEN_EXPIRED:
            log.warning("signaling closed the connection: this peer's token expired")
            return self._reconnect_min_s  # a --token-file may hold a renewed one already
        if code == CloseCode.RESUMED:
            log.warning("signaling closed this connection: a newer one presented its resume secret")
            return self._reconnect_min_s
        if code == CloseCode.PEER_ID_IN_USE:
            log.error(
                "signaling refused this peer: its peer id is connected from elsewhere "
                "(two devices sharing one token?); retrying slowly"
            )
            return self._reconnect_max_s
        return self._reconnect_min_s if welcomed else delay

    async def _connect_once(self, token: str) -> tuple[bool, int | None]:
        """One connection's life: whether it got as far as ``Welcome``, and the close code."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {token}"}
        if self._resume is not None:
            headers[RESUME_HEADER] = self._resume
        url = self.url
        context = self._ssl[url]
        async with self._session.ws_connect(
            url,
            headers=headers,
            heartbeat=self._heartbeat_s,
            max_msg_size=self._max_frame_bytes,
            ssl=context if context is not None else True,
        ) as ws:
            self._ws = ws
            try:
                return await self._serve(ws), ws.close_code
            finally:  # the connection is gone (or going): no longer usable for offers
                if self._state is SignalingState.CONNECTED:
                    self._set_state(SignalingState.CONNECTING)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read one connection until it ends; True if it got as far as ``Welcome``."""
        welcomed = False
        async for raw in ws:
            if raw.type != aiohttp.WSMsgType.BINARY:
                if raw.type == aiohttp.WSMsgType.ERROR:
                    break
                continue
            try:
                message = decode(raw.data, max_frame_bytes=self._max_frame_bytes)
            except ProtocolError as exc:
                log.warning("signaling sent a bad frame (%s); reconnecting", exc)
                break
            if isinstance(message, Welcome):
                self._welcome = message  # later ones refresh the ICE credentials
                if message.resume is not None:
                    self._resume = message.resume  # this connection's, for the next one
                if not welcomed:
                    welcomed = True
                    self._now.clear()  # a retry_now() during this attempt is spent
                    self._welcomes += 1
                    self._last_error = None
                    for hello in self._hello():
                        await ws.send_bytes(encode(hello))
                    self._set_state(SignalingState.CONNECTED)
                    log.info(
                        "connected to signaling at %s as %s %s",
                        self.url,
                        message.role.value,
                        message.peer_id,
                    )
                continue
            await self._dispatch(message)
        log.warning("signaling connection to %s closed (code %s)", self.url, ws.close_code)
        return welcomed

    async def _dispatch(self, message: Message) -> None:
        if isinstance(message, RelayData):
            relay = self._relays.get(message.session_id)
            if relay is not None:
                relay.feed(message.data)
            return
        if isinstance(message, RelayClose):
            relay = self._relays.pop(message.session_id, None)
            if relay is not None:
                relay.closed_by_peer()
            return
        if isinstance(message, RelayAccept):
            self._key_relay(message)  # now, before a frame of this session can arrive
        if _settle(self._pending_relays, RelayAccept, message) or _settle(
            self._pending, Answer, message
        ):
            return
        if self._on_message is not None:
            try:
                await self._on_message(message)
            except Exception:
                log.exception("handling a %s from signaling failed", message.type_tag)

    def _key_relay(self, accept: RelayAccept) -> None:
        """Key the edge's link of the session ``accept`` answers, from the worker's key;
        without a usable key, fail the ``open_relay`` waiting on it instead."""
        handshake = self._handshakes.pop(accept.session_id, None)
        future = self._pending_relays.get(accept.session_id)
        link = self._relays.get(accept.session_id)
        if handshake is None or future is None or future.done() or link is None:
            return
        try:
            link.secure(handshake.cipher(accept.key))
        except RelayKeyRefused as exc:
            log.error("relayed session to worker %s refused: %s", accept.peer_id, exc)
            future.set_exception(SignalingRefused(ErrorCode.PROTOCOL_ERROR, str(exc)))

    def _disconnected(self) -> None:
        self._ws = None
        for relay in list(self._relays.values()):  # the relay path is this connection
            relay.closed_by_peer()
        self._relays.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SignalingUnavailable("signaling connection lost"))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


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


def _settle(pending: dict[str, asyncio.Future[R]], reply: type[R], message: Message) -> bool:
    """Resolve the request ``message`` answers, if it answers one: with the ``reply``, or
    with ``SignalingRefused`` for a ``SignalError`` naming the same session."""
    if not isinstance(message, reply | SignalError):
        return False
    future = pending.get(message.session_id or "")
    if future is None:
        return False
    if not future.done():
        if isinstance(message, SignalError):
            future.set_exception(SignalingRefused(message.code, message.message))
        else:
            future.set_result(message)
    return True
