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
sharing Redis) are tried in turn, and the backoff grows only after a whole round of
URLs failed (``link.signaling_backoff``). Logs name the URL in use.

Across a network the URL is ``wss://``, verified against the system CAs or ``ca_file``;
plaintext ``ws://`` is refused at construction unless it names this host or
``insecure_signaling`` is set (``link.tls``). A certificate that fails verification is
an error, retried at the longest backoff, never a fallback to plaintext. Relayed
sessions ride on this connection, end to end encrypted (``link.signaling_relays``).

A network change (``reconnect``) drops the connection and reconnects at once, to the
same URL, skipping any backoff. Every reconnect presents the resume secret of the last
``Welcome`` (``link.signaling_resume``): signaling then replaces this peer's old
connection, if it still lists one, at once instead of first probing it for seconds.

Its state is one ``SignalingState``, changed only by ``_set_state``: ``CLOSED`` until
``start``, ``CONNECTING`` while it (re)connects or waits to, ``CONNECTED`` from this
connection's ``Welcome`` until the connection is lost, ``CLOSED`` again after ``aclose``.
``connected`` and ``wait_connected`` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from pathlib import Path

import aiohttp

from link.signaling_backoff import Backoff, signaling_urls
from link.signaling_relays import SignalingRelays
from link.signaling_replies import SignalingUnavailable, settle
from link.signaling_resume import ResumeSecret
from link.tls import client_ssl_context
from shared.codec import decode, encode
from shared.errors import ProtocolError
from shared.messages import (
    Answer,
    IceServer,
    Message,
    Offer,
    Welcome,
)

__all__ = ["SignalingClient", "SignalingState"]

log = logging.getLogger(__name__)


class SignalingState(StrEnum):
    """Where a ``SignalingClient`` is."""

    CLOSED = "closed"
    """Not started, or stopped by ``aclose``."""
    CONNECTING = "connecting"
    """Connecting, or waiting to reconnect (jittered backoff)."""
    CONNECTED = "connected"
    """Authenticated and welcomed on the current connection: offers can be sent."""


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
        urls = signaling_urls(url)
        self._ssl = {
            u: client_ssl_context(u, ca_file=ca_file, insecure=insecure_signaling) for u in urls
        }
        self._backoff = Backoff(urls, min_s=reconnect_min_s, max_s=reconnect_max_s)
        self._token = token
        self._on_message = on_message
        self._hello = hello
        self._max_frame_bytes = max_frame_bytes
        self._connect_timeout_s = connect_timeout_s
        self._heartbeat_s = heartbeat_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._welcome: Welcome | None = None
        self._state = SignalingState.CLOSED
        self._changed = asyncio.Event()  # set, then replaced, on every state change
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self.relays = SignalingRelays(self.send)
        """Relayed sessions on this connection: ``relays.open`` (an edge asks for one),
        ``relays.accept`` (a worker takes one), ``relays.link``."""
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_error: str | None = None
        self._welcomes = 0  # connections welcomed so far (a lost one is not a failed one)
        self._resume = ResumeSecret()  # the last Welcome's, presented on reconnecting

    @property
    def url(self) -> str:
        """The signaling URL in use, or tried next."""
        return self._backoff.url

    @property
    def urls(self) -> tuple[str, ...]:
        return self._backoff.urls

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
        self._backoff.retry_now()
        log.info("dropping the signaling connection: the network changed")
        if old.connector is not None:
            await old.connector.close(abort_ssl=True)  # no TLS goodbye on a dead path
        await old.close()

    def retry_now(self) -> None:
        """The network changed without taking the connection's address away (an address
        was added): if waiting to reconnect, try at once. Nothing changes while
        connected."""
        if self._task is not None and self._state is SignalingState.CONNECTING:
            self._backoff.retry_now()

    async def _run(self) -> None:
        self._session = self._new_session()
        try:
            while True:
                self._set_state(SignalingState.CONNECTING)
                before = self._welcomes
                delay = await self._attempt(self._backoff.delay)
                self._disconnected()
                await self._backoff.wait(delay, welcomed=self._welcomes > before)
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
            return self._backoff.longest
        try:
            welcomed, code = await self._connect_once(token)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._last_error, delay = self._backoff.after_error(exc, delay)
            return delay
        return self._backoff.after_close(code, delay, welcomed=welcomed)

    async def _connect_once(self, token: str) -> tuple[bool, int | None]:
        """One connection's life: whether it got as far as ``Welcome``, and the close code."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {token}"}
        self._resume.present(headers)
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
                self._resume.learn(message)  # this connection's, for the next one
                if not welcomed:
                    welcomed = True
                    self._backoff.welcomed()  # a retry_now() during this attempt is spent
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
        if self.relays.deliver(message) or settle(self._pending, Answer, message):
            return
        if self._on_message is not None:
            try:
                await self._on_message(message)
            except Exception:
                log.exception("handling a %s from signaling failed", message.type_tag)

    def _disconnected(self) -> None:
        self._ws = None
        self.relays.connection_lost()  # the relay path is this connection
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SignalingUnavailable("signaling connection lost"))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
