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
from typing import TypeVar

import aiohttp

from link.framed import DEFAULT_QUEUED_FRAMES
from link.relay_link import RelayLink
from shared.close_codes import CloseCode
from shared.codec import decode, encode
from shared.errors import ProtocolError, TandemError
from shared.messages import (
    Answer,
    ErrorCode,
    IceServer,
    Message,
    Offer,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    SignalError,
    Welcome,
)

__all__ = ["SignalingClient", "SignalingRefused", "SignalingState", "SignalingUnavailable"]

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
        url: str,
        token: str | Callable[[], str],
        *,
        on_message: Callable[[Message], Awaitable[None]] | None = None,
        hello: Callable[[], Sequence[Message]] = tuple,
        max_frame_bytes: int = 65536,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        heartbeat_s: float = 15.0,
    ) -> None:
        self._url = url
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
        self._relays: dict[str, RelayLink] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

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
            raise SignalingUnavailable(f"not connected to signaling at {self._url}") from exc

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
        label: str = "",
    ) -> RelayLink:
        """A link for relayed session ``session_id``; its frames are routed to it from now on."""
        link = RelayLink(
            session_id,
            self.send,
            on_close=self._forget_relay,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            label=label,
        )
        self._relays[session_id] = link
        return link

    def _forget_relay(self, session_id: str) -> None:
        self._relays.pop(session_id, None)

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
        self._pending_relays[session_id] = future
        link = self.relay_link(
            session_id, max_frame_bytes=max_frame_bytes, max_queued_frames=max_queued_frames
        )
        try:
            await self.send(RelayOpen(session_id=session_id, model=model, avoid=avoid))
            async with asyncio.timeout(timeout_s):
                accept = await future
        except BaseException as exc:
            await link.aclose()
            if isinstance(exc, TimeoutError):
                raise SignalingUnavailable("no worker accepted the relay in time") from exc
            raise
        finally:
            self._pending_relays.pop(session_id, None)
        link.rename(accept.peer_id)
        return link, accept

    async def _run(self) -> None:
        delay = self._reconnect_min_s
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            while True:
                self._set_state(SignalingState.CONNECTING)
                delay = await self._attempt(delay)
                self._disconnected()
                wait = random.uniform(
                    delay / 2, delay
                )  # jitter: peers must not reconnect in lockstep
                log.info("reconnecting to signaling in %.1f s", wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._reconnect_max_s)
        finally:
            self._set_state(SignalingState.CLOSED)
            self._disconnected()
            await self._session.close()

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
                log.error("signaling refused this peer's token (expired or wrong secret?)")
                return self._reconnect_max_s
            if exc.status == 429:
                log.error("signaling is refusing failed logins from this address for a while")
                return self._reconnect_max_s
            log.warning("signaling handshake failed: HTTP %s", exc.status)
            return delay
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot reach signaling at %s: %s", self._url, exc.__class__.__name__)
            return delay
        if code == CloseCode.TOKEN_EXPIRED:
            log.warning("signaling closed the connection: this peer's token expired")
            return self._reconnect_min_s  # a --token-file may hold a renewed one already
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
        async with self._session.ws_connect(
            self._url,
            headers=headers,
            heartbeat=self._heartbeat_s,
            max_msg_size=self._max_frame_bytes,
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
                if not welcomed:
                    welcomed = True
                    for hello in self._hello():
                        await ws.send_bytes(encode(hello))
                    self._set_state(SignalingState.CONNECTED)
                    log.info("connected to signaling as %s %s", message.role.value, message.peer_id)
                continue
            await self._dispatch(message)
        log.warning("signaling connection closed (code %s)", ws.close_code)
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
        if _settle(self._pending_relays, RelayAccept, message) or _settle(
            self._pending, Answer, message
        ):
            return
        if self._on_message is not None:
            try:
                await self._on_message(message)
            except Exception:
                log.exception("handling a %s from signaling failed", message.type_tag)

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
