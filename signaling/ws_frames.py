"""RFC 6455 framing for signaling's side of a peer's WebSocket: parse what a client
sends, build what a server sends.

Signaling keeps 10,000 idle peers in one process, and aiohttp's WebSocket keeps ~14 KB
of state per connection (the parsed upgrade request, its parser and queues, two tasks
and their coroutine frames): more than the whole budget. So once aiohttp has routed and
authenticated the upgrade request, ``signaling.ws_peer`` speaks the protocol itself with
these functions. Only what signaling needs is supported: no extension is ever
negotiated (so the reserved bits must be zero), frames from a client must be masked, and
a payload over the configured limit is refused from its header, before it is buffered.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameError",
    "accept_key",
    "build_frame",
    "close_payload",
    "parse_close",
    "parse_frame",
    "unmask",
]

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_CONTROL_PAYLOAD = 125
# Codes a peer may send in a close frame (RFC 6455 §7.4.1 and the IANA registry);
# 1005, 1006 and 1015 are never sent on the wire.
_VALID_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


class FrameError(Exception):
    """The peer broke the protocol: close the connection with ``code``. ``end``: where
    the offending frame ends in the buffer, when that is known (a frame refused only for
    its size can be passed over; after a malformed one the stream cannot be followed)."""

    def __init__(self, code: int, reason: str, end: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.end = end


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def unmask(mask: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (one big-integer XOR: C speed)."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def parse_frame(
    buf: bytes | bytearray, start: int, max_payload: int
) -> tuple[bool, int, bytes, int] | None:
    """The frame at ``buf[start:]``: ``(fin, opcode, unmasked payload, end offset)``, or
    ``None`` while it is incomplete. ``FrameError`` (1002) for a protocol violation, and
    (1009) as soon as the header announces a payload over ``max_payload``."""
    have = len(buf) - start
    if have < 2:
        return None
    b0, b1 = buf[start], buf[start + 1]
    if b0 & 0x70:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set: no extension was negotiated")
    fin, opcode = bool(b0 & 0x80), b0 & 0x0F
    if not b1 & 0x80:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "a client's frames must be masked")
    length, pos = b1 & 0x7F, start + 2
    if opcode >= OP_CLOSE:
        if opcode > OP_PONG:
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if not fin:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
        if length > _MAX_CONTROL_PAYLOAD:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes")
    elif opcode > OP_BINARY:
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
    if length == 126:
        if have < 4:
            return None
        length, pos = int.from_bytes(buf[pos : pos + 2], "big"), pos + 2
    elif length == 127:
        if have < 10:
            return None
        length, pos = int.from_bytes(buf[pos : pos + 8], "big"), pos + 8
        if length >> 63:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "payload length with its top bit set")
    if length > max_payload:
        raise FrameError(
            CLOSE_MESSAGE_TOO_BIG,
            f"frame of {length} bytes exceeds the limit of {max_payload}",
            end=pos + 4 + length,
        )
    end = pos + 4 + length
    if len(buf) < end:
        return None
    return fin, opcode, unmask(bytes(buf[pos : pos + 4]), bytes(buf[pos + 4 : end])), end


def build_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked (server) frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload: the code, then the reason cut to fit 125 bytes (at a
    character boundary: a reason that is not UTF-8 would be a protocol error)."""
    return code.to_bytes(2, "big") + reason.encode()[:123].decode(errors="ignore").encode()


def parse_close(payload: bytes) -> int:
    """The code of a peer's close frame (1005 when it gave none); ``FrameError`` if the
    payload is malformed (1002) or its reason is not UTF-8 (1007)."""
    if not payload:
        return CLOSE_NO_STATUS
    if len(payload) == 1:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8") from None
    return code
