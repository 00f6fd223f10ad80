"""RFC 6455 framing: what a client may send is parsed, what it may not is refused with
the right close code, and frames split anywhere wait for the rest."""

from __future__ import annotations

import os

import pytest

from signaling.ws_frames import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    FrameError,
    accept_key,
    build_frame,
    close_payload,
    parse_close,
    parse_frame,
    unmask,
)


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """A frame as a client sends it (masked), built independently of the code under test."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 65536:
        head = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_masked_frames_of_every_length_encoding_are_parsed(size: int) -> None:
    payload = os.urandom(size)
    raw = b"junk" + client_frame(OP_BINARY, payload) + b"next"
    assert parse_frame(raw, 4, 1 << 20) == (True, OP_BINARY, payload, len(raw) - 4)


def test_a_frame_split_anywhere_waits_for_the_rest() -> None:
    raw = client_frame(OP_BINARY, os.urandom(300))
    for cut in range(len(raw)):
        assert parse_frame(raw[:cut], 0, 1 << 20) is None
    assert parse_frame(raw, 0, 1 << 20) is not None


def test_unmask_undoes_the_clients_mask() -> None:
    payload = os.urandom(1001)
    raw = client_frame(OP_BINARY, payload)
    key, body = raw[4:8], raw[8:]
    assert unmask(key, body) == payload
    assert unmask(key, b"") == b""


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (client_frame(OP_BINARY, b"x", masked=False), 1002),
        (client_frame(OP_BINARY, b"x", rsv=0x40), 1002),  # compression was not negotiated
        (client_frame(0x3, b"x"), 1002),  # reserved data opcode
        (client_frame(0xB, b"x"), 1002),  # reserved control opcode
        (client_frame(OP_PING, b"x", fin=False), 1002),  # control frames are never fragmented
        (client_frame(OP_PING, b"x" * 126), 1002),  # control payloads fit 125 bytes
        (client_frame(OP_BINARY, b"x" * 2000), 1009),
    ],
)
def test_forbidden_frames_are_refused_with_their_code(raw: bytes, code: int) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, 0, 1024)
    assert caught.value.code == code


def test_an_oversized_frame_is_refused_from_its_header_and_can_be_passed_over() -> None:
    raw = client_frame(OP_BINARY, b"x" * 70000)
    with pytest.raises(FrameError) as caught:
        parse_frame(raw[:10], 0, 65536)  # the header alone: nothing buffered yet
    assert (caught.value.code, caught.value.end) == (1009, len(raw))


def test_continuation_and_text_opcodes_parse_as_they_came() -> None:
    first = client_frame(OP_TEXT, b"he", fin=False)
    second = client_frame(OP_CONTINUATION, b"llo")
    assert parse_frame(first, 0, 100) == (False, OP_TEXT, b"he", len(first))
    assert parse_frame(second, 0, 100) == (True, OP_CONTINUATION, b"llo", len(second))


def test_server_frames_are_unmasked_and_final() -> None:
    for size in (0, 125, 126, 65535, 65536):
        frame = build_frame(OP_BINARY, b"y" * size)
        assert frame[0] == 0x80 | OP_BINARY
        assert not frame[1] & 0x80
        assert frame.endswith(b"y" * size)
        assert len(frame) - size == (2 if size < 126 else 4 if size < 65536 else 10)


def test_close_payloads() -> None:
    assert parse_close(b"") == 1005
    assert parse_close(close_payload(4001, "token expired")) == 4001
    long_reason = close_payload(1000, "é" * 200)
    assert len(long_reason) <= 125 and parse_close(long_reason) == 1000
    for bad, code in [
        (b"\x03", 1002),
        ((1005).to_bytes(2, "big"), 1002),  # never sent on the wire
        ((999).to_bytes(2, "big"), 1002),
        ((1000).to_bytes(2, "big") + b"\xff\xfe", 1007),
    ]:
        with pytest.raises(FrameError) as caught:
            parse_close(bad)
        assert caught.value.code == code
