"""Issue 13, item 10 (in part): malformed input gets a clean refusal, never a 500.

The attacks: an ``Authorization`` header that is not UTF-8 made signaling (and the
edge's HTTP API) answer 500 with a traceback in the log; a model name of a few thousand
characters made signaling answer INTERNAL, without the session id, so the edge waited
for an answer that never came.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from edge_agent.engines.local import LocalEngine
from shared.codec import decode, encode
from shared.messages import ErrorCode, Message, Offer, Register, RelayOpen, Role, SignalError
from tests.edge_agent.api.harness import llama_runner, running_agent
from tests.security.auth_support import bearer, raw_request, signaling_server, token

BAD_HEADERS = [b"Bearer \xff\xfe\xfd", "Bearer caf\u00e9.x.y".encode(), b"\xc3(\xa0 x"]


def upgrade(port: int, authorization: bytes) -> bytes:
    return (
        b"GET /v1/signal HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, close\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: "
        + authorization
        + b"\r\n\r\n"
    )


async def test_a_non_utf8_authorization_header_gets_a_401_at_signaling(tmp_path: Path) -> None:
    async with signaling_server(tmp_path) as server:
        for header in BAD_HEADERS:
            status, body = await raw_request(server.port, upgrade(server.port, header))
            assert status == 401, body
            error = json.loads(body)["error"]
            assert error["type"] == "authentication_error"
            assert error["code"] in {"token_invalid", "missing_token"}
        assert "Traceback" not in server.log()


async def test_a_non_utf8_authorization_header_gets_a_401_at_the_edge() -> None:
    local = LocalEngine(llama_runner())  # never loaded: the key is checked before anything
    async with running_agent(local, api_key="edge-api-key-for-tests") as agent:
        port = int(agent.url.rsplit(":", 1)[1])
        for header in BAD_HEADERS:
            request = (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Connection: close\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\nAuthorization: " + header + b"\r\n\r\n{}"
            )
            status, body = await raw_request(port, request)
            assert status == 401, body
            assert json.loads(body)["error"]["code"] == "invalid_api_key"


async def exchange(ws: aiohttp.ClientWebSocketResponse, message: Message) -> Message:
    await ws.send_bytes(encode(message))
    frame = await ws.receive(timeout=10)
    assert frame.type is aiohttp.WSMsgType.BINARY, frame
    return decode(frame.data, max_frame_bytes=1 << 20)


@pytest.mark.parametrize("length", [257, 1500, 20_000])
async def test_an_overlong_model_name_is_refused_with_its_session_id(
    tmp_path: Path, length: int
) -> None:
    name = "m" * length
    async with (
        signaling_server(tmp_path) as server,
        aiohttp.ClientSession() as session,
        session.ws_connect(server.ws, headers=bearer(token(Role.EDGE, "pi-1"))) as edge,
        session.ws_connect(server.ws, headers=bearer(token(Role.WORKER, "gpu-1"))) as worker,
    ):
        await edge.receive(timeout=10)  # Welcome
        await worker.receive(timeout=10)
        for message in (
            Offer(session_id="s-offer", sdp="v=0", model=name),
            RelayOpen(session_id="s-relay", model=name),
        ):
            reply = await exchange(edge, message)
            assert isinstance(reply, SignalError), reply
            assert reply.code is ErrorCode.BAD_REQUEST
            assert reply.session_id == message.session_id
            assert "at most 256" in reply.message
        reply = await exchange(worker, Register(models=("ok", name), capacity=1))
        assert isinstance(reply, SignalError) and reply.code is ErrorCode.BAD_REQUEST
        # The refusals closed nothing: the edge still gets its ordinary answer.
        reply = await exchange(edge, Offer(session_id="s-next", sdp="v=0", model="ok"))
        assert isinstance(reply, SignalError) and reply.session_id == "s-next"
        assert reply.code is ErrorCode.NO_WORKER  # the oversized Register registered nothing
        assert "Traceback" not in server.log()
