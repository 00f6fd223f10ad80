"""The frame codec: round trips, golden frames, decode errors, fragmentation, fuzzing.

Golden frames live in ``tests/shared/frames/*.bin``. When the wire format changes on
purpose (a new field, a ``PROTOCOL_VERSION`` bump), regenerate them with::

    .venv/bin/python -m tests.shared.test_codec --regenerate-frames

and commit the new files together with the change. Tests never rewrite them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared import (
    DEFAULT_MAX_FRAME_BYTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Answer,
    Cancel,
    ChatMessage,
    DecodeError,
    Drain,
    ErrorCode,
    Fragment,
    FrameTooLarge,
    GenerateRequest,
    IceServer,
    LoadReport,
    Message,
    Offer,
    Ping,
    Pong,
    ProtocolError,
    Reassembler,
    Register,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
    SamplingParams,
    SignalError,
    StreamEnd,
    StreamFailed,
    TokenChunk,
    UnknownMessage,
    VersionMismatch,
    Welcome,
    decode,
    encode,
    split,
)

FRAMES_DIR = Path(__file__).parent / "frames"
REGENERATE_HINT = "regenerate with: .venv/bin/python -m tests.shared.test_codec --regenerate-frames"

SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=ice-ufrag:Xw3t\r\na=ice-pwd:9pXvZ2mJq1bC0rYk6hT4sN8d\r\n"
    "a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"
)

# One realistic instance of every wire message, keyed by its type tag.
SAMPLES: dict[str, Message] = {
    "generate_request": GenerateRequest(
        request_id="req-7f3a",
        model="smollm2-135m",
        messages=(
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Name a prime number greater than 10. ¿Sí? 日本語 🚀"),
        ),
        params=SamplingParams(max_tokens=64, temperature=0.2, top_p=0.9, stop=("\n\n",), seed=42),
    ),
    "token_chunk": TokenChunk(request_id="req-7f3a", text=" Eleven, 13… ✓", n_tokens=3),
    "stream_end": StreamEnd(
        request_id="req-7f3a", finish_reason="stop", prompt_tokens=31, completion_tokens=12
    ),
    "stream_failed": StreamFailed(
        request_id="req-7f3a",
        code=ErrorCode.CONTEXT_TOO_LONG,
        message="prompt is 4100 tokens; this model's context window is 4096 tokens",
        retryable=False,
    ),
    "cancel": Cancel(request_id="req-7f3a"),
    "ping": Ping(nonce=123456789),
    "pong": Pong(nonce=123456789),
    "fragment": Fragment(message_id=5, index=1, count=3, data=b"\x93\x01\xa4ping\x81\x00\xff"),
    "welcome": Welcome(
        peer_id="edge-berlin-01",
        role=Role.EDGE,
        ice_servers=(
            IceServer(urls=("stun:stun.example.net:3478",)),
            IceServer(
                urls=("turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"),
                username="1732870000:edge-berlin-01",
                credential="q2V9pW+f7uK1Hc0=",
            ),
        ),
        resume="m1Yc4V0x9bQyT3o6hV2c8sJ1aZ7kL5eN0pR2tU4wX6y",
    ),
    "register": Register(models=("llama-3.1-8b-instruct", "qwen2.5-7b"), capacity=4),
    "load_report": LoadReport(active=2, draining=True),
    "offer": Offer(session_id="sess-01", sdp=SDP, model="llama-3.1-8b-instruct"),
    "answer": Answer(session_id="sess-01", sdp=SDP, peer_id="worker-gpu-3"),
    "signal_error": SignalError(
        code=ErrorCode.NO_WORKER, message="no worker serves that model", session_id="sess-01"
    ),
    "relay_open": RelayOpen(session_id="sess-02", model="qwen2.5-7b", peer_id="edge-kitchen"),
    "relay_accept": RelayAccept(session_id="sess-02", model="qwen2.5-7b", peer_id="worker-gpu-3"),
    "relay_data": RelayData(session_id="sess-02", data=b"\x93\x01\xa4ping\x81\xa5nonce\x07"),
    "relay_close": RelayClose(session_id="sess-02", reason="worker draining"),
    "drain": Drain(deadline_s=25.0),
}

# Small frames whose exact bytes are pinned on disk.
GOLDEN: dict[str, Message] = {
    "ping": Ping(nonce=7),
    "cancel": Cancel(request_id="r1"),
    "token_chunk": TokenChunk(request_id="r1", text="Hello, wörld", n_tokens=4),
    "stream_end": StreamEnd(
        request_id="r1", finish_reason="length", prompt_tokens=9, completion_tokens=8
    ),
    "stream_failed": StreamFailed(
        request_id="r1", code=ErrorCode.OVERLOADED, message="busy", retryable=True
    ),
    "generate_request": GenerateRequest(
        request_id="r1",
        model="m",
        messages=(ChatMessage(role="user", content="hi"),),
        params=SamplingParams(max_tokens=8, temperature=0.0, stop=("###",), seed=1),
    ),
    "fragment": Fragment(message_id=1, index=0, count=2, data=b"\x00\x01\x02"),
}


def golden_path(name: str) -> Path:
    return FRAMES_DIR / f"{name}.bin"


def regenerate_frames() -> None:
    FRAMES_DIR.mkdir(exist_ok=True)
    for name, message in GOLDEN.items():
        golden_path(name).write_bytes(encode(message))
        print(f"wrote {golden_path(name)}")


def frame(version: Any, tag: Any, fields: Any) -> bytes:
    packed: bytes = msgpack.packb([version, tag, fields], use_bin_type=True)
    return packed


def big_request(request_id: str = "big", size: int = 200_000) -> GenerateRequest:
    # Non-repeating text so that a misplaced fragment could not reassemble to the same bytes.
    prompt = "".join(f"{i:06d} " for i in range(size // 7 + 1))[:size]
    return GenerateRequest(request_id=request_id, prompt=prompt)


# ---------------------------------------------------------------------------- round trips


def test_samples_cover_every_message_type() -> None:
    assert set(SAMPLES) == set(MESSAGE_TYPES)
    for tag, message in SAMPLES.items():
        assert type(message) is MESSAGE_TYPES[tag]
        assert message.type_tag == tag


@pytest.mark.parametrize("tag", sorted(SAMPLES))
def test_round_trip(tag: str) -> None:
    message = SAMPLES[tag]
    data = encode(message)
    assert len(data) <= DEFAULT_MAX_FRAME_BYTES
    decoded = decode(data)
    assert type(decoded) is type(message)
    assert decoded == message


def test_frame_layout_is_version_tag_fields() -> None:
    version, tag, fields = msgpack.unpackb(encode(SAMPLES["token_chunk"]), raw=False)
    assert version == PROTOCOL_VERSION
    assert tag == "token_chunk"
    assert fields == {"request_id": "req-7f3a", "text": " Eleven, 13… ✓", "n_tokens": 3}


def test_fragment_data_is_msgpack_bin() -> None:
    raw = msgpack.unpackb(encode(SAMPLES["fragment"]), raw=False)
    assert isinstance(raw[2]["data"], bytes)


def test_prompt_request_round_trips() -> None:
    message = GenerateRequest(request_id="p", prompt="Once upon a time")
    assert decode(encode(message)) == message


# ------------------------------------------------------------------------- golden frames


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_frame_encoding(name: str) -> None:
    path = golden_path(name)
    assert path.is_file(), f"missing golden frame {path}; {REGENERATE_HINT}"
    assert encode(GOLDEN[name]) == path.read_bytes(), (
        f"the wire encoding of {name} changed; if intended, bump PROTOCOL_VERSION where needed "
        f"and {REGENERATE_HINT}"
    )


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_frame_decoding(name: str) -> None:
    path = golden_path(name)
    assert path.is_file(), f"missing golden frame {path}; {REGENERATE_HINT}"
    assert decode(path.read_bytes()) == GOLDEN[name]


def test_no_stray_golden_frames() -> None:
    assert {p.stem for p in FRAMES_DIR.glob("*.bin")} == set(GOLDEN)


# ------------------------------------------------------------------------- decode errors


@pytest.mark.parametrize("version", [0, 2, 99, -1, "1", None])
def test_wrong_version(version: Any) -> None:
    with pytest.raises(VersionMismatch):
        decode(frame(version, "ping", {"nonce": 1}))


@pytest.mark.parametrize("tag", ["pong2", "Ping", "", "generate", "x" * 500])
def test_unknown_type(tag: str) -> None:
    with pytest.raises(UnknownMessage) as info:
        decode(frame(PROTOCOL_VERSION, tag, {"nonce": 1}))
    assert len(str(info.value)) < 200  # the tag is truncated in the message


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    # The protocol only ever adds fields; an older peer must still read the rest.
    frame = msgpack.packb([PROTOCOL_VERSION, "ping", {"nonce": 1, "added_later": True}])
    assert decode(frame) == Ping(nonce=1)


@pytest.mark.parametrize(
    ("tag", "fields"),
    [
        ("ping", {}),  # missing field
        ("ping", {"nonce": "seven"}),  # wrong type
        ("token_chunk", {"request_id": "", "text": "x", "n_tokens": 1}),  # empty id
        ("token_chunk", {"request_id": "r", "text": "x", "n_tokens": -1}),  # negative count
        (
            "stream_end",
            {"request_id": "r", "finish_reason": "eos", "prompt_tokens": 1, "completion_tokens": 1},
        ),
        ("stream_failed", {"request_id": "r", "code": "nope", "message": "m"}),
        ("generate_request", {"request_id": "r"}),  # neither messages nor prompt
        (
            "generate_request",
            {"request_id": "r", "prompt": "a", "messages": [{"role": "user", "content": "b"}]},
        ),
        ("generate_request", {"request_id": "r", "messages": [{"role": "wizard", "content": "b"}]}),
        ("generate_request", {"request_id": "r", "prompt": "a", "params": {"temperature": 3.0}}),
        ("fragment", {"message_id": 1, "index": 0, "count": 1, "data": b""}),  # count < 2
        ("register", {"models": [], "capacity": 1}),
        ("welcome", {"peer_id": "p", "role": "admin"}),
        ("offer", {"session_id": "s", "sdp": "x" * 65537}),
    ],
)
def test_invalid_fields(tag: str, fields: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        decode(frame(PROTOCOL_VERSION, tag, fields), max_frame_bytes=1 << 20)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"\x93\x01",  # truncated array
        b"hello world",
        b'{"type": "ping"}',
        encode(Ping(nonce=1)) + b"\x00",  # trailing bytes
    ],
)
def test_non_msgpack(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


@pytest.mark.parametrize(
    "obj",
    [
        {"version": 1},
        [1, "ping"],
        [1, "ping", {"nonce": 1}, "extra"],
        "ping",
        42,
        None,
        [1, 5, {"nonce": 1}],  # tag not a string
        [1, "ping", [1]],  # fields not a map
        [1, "ping", None],
    ],
)
def test_wrong_frame_shape(obj: Any) -> None:
    with pytest.raises(DecodeError):
        decode(msgpack.packb(obj))


def test_non_string_field_keys() -> None:
    with pytest.raises(DecodeError):
        decode(frame(PROTOCOL_VERSION, "ping", {b"nonce": 1}))


def test_oversized_frame() -> None:
    data = encode(TokenChunk(request_id="r", text="x" * 20_000, n_tokens=1))
    with pytest.raises(FrameTooLarge):
        decode(data)
    assert decode(data, max_frame_bytes=len(data)) == TokenChunk(
        request_id="r", text="x" * 20_000, n_tokens=1
    )
    with pytest.raises(FrameTooLarge):
        decode(data, max_frame_bytes=len(data) - 1)


def test_oversized_garbage_is_refused_before_parsing() -> None:
    with pytest.raises(FrameTooLarge):
        decode(b"\xc1" * (DEFAULT_MAX_FRAME_BYTES + 1))


def test_decode_errors_are_protocol_errors() -> None:
    for exc in (DecodeError, UnknownMessage, VersionMismatch, FrameTooLarge):
        assert issubclass(exc, ProtocolError)


# ------------------------------------------------------------------ split / Reassembler


def test_small_message_is_one_frame() -> None:
    message = SAMPLES["token_chunk"]
    assert split(message, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES, message_id=0) == [
        encode(message)
    ]
    assert Reassembler().feed(encode(message)) == message


def test_split_too_small_a_frame_limit() -> None:
    with pytest.raises(ValueError):
        split(big_request(size=1000), max_frame_bytes=64, message_id=0)


def test_large_request_splits_and_reassembles_exactly() -> None:
    message = big_request()
    frames = split(message, max_frame_bytes=16 * 1024, message_id=3)
    assert len(frames) == -(-len(encode(message)) // (16 * 1024 - 96))
    assert all(len(f) <= 16 * 1024 for f in frames)
    assert all(isinstance(decode(f), Fragment) for f in frames)
    reassembler = Reassembler(max_frame_bytes=16 * 1024)
    results = [reassembler.feed(f) for f in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    assert results[-1] == message
    assert isinstance(results[-1], GenerateRequest)
    assert results[-1].prompt == message.prompt


def test_fragments_in_any_order() -> None:
    message = big_request(size=60_000)
    frames = split(message, max_frame_bytes=8 * 1024, message_id=0)
    reassembler = Reassembler(max_frame_bytes=8 * 1024)
    order = list(reversed(frames))
    order[0], order[2] = order[2], order[0]
    results = [reassembler.feed(f) for f in order]
    assert results[-1] == message
    assert all(r is None for r in results[:-1])


def test_interleaved_fragments_of_two_messages() -> None:
    first = big_request("first", size=100_000)
    second = big_request("second", size=70_000)
    frames_a = split(first, max_frame_bytes=16 * 1024, message_id=1)
    frames_b = split(second, max_frame_bytes=16 * 1024, message_id=2)
    assert len(frames_a) > len(frames_b) > 1
    reassembler = Reassembler()
    done: list[Message] = []
    ping = Ping(nonce=9)
    for i in range(len(frames_a)):
        for frames in (frames_a, frames_b):
            if i < len(frames) and (out := reassembler.feed(frames[i])) is not None:
                done.append(out)
        if i == 1:  # a whole frame in the middle of both
            assert reassembler.feed(encode(ping)) == ping
    assert done == [second, first]


def test_completed_messages_free_their_slot_and_bytes() -> None:
    reassembler = Reassembler(max_partial=1, max_message_bytes=250_000)
    for n in range(3):
        message = big_request(f"m{n}")
        results = [
            reassembler.feed(f) for f in split(message, max_frame_bytes=16 * 1024, message_id=n)
        ]
        assert results[-1] == message


def test_message_id_can_be_reused_after_completion() -> None:
    reassembler = Reassembler()
    for n in range(2):
        message = big_request(f"again{n}", size=40_000)
        *head, last = split(message, max_frame_bytes=16 * 1024, message_id=7)
        assert all(reassembler.feed(f) is None for f in head)
        assert reassembler.feed(last) == message


def fragment(message_id: int, index: int, count: int, data: bytes = b"xx") -> bytes:
    return encode(Fragment(message_id=message_id, index=index, count=count, data=data))


def test_duplicate_fragment() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(fragment(1, 0, 3)) is None
    with pytest.raises(DecodeError):
        reassembler.feed(fragment(1, 0, 3))


def test_fragment_with_inconsistent_count() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(fragment(1, 0, 3)) is None
    with pytest.raises(DecodeError):
        reassembler.feed(fragment(1, 1, 4))


def test_fragment_index_out_of_range() -> None:
    with pytest.raises(DecodeError):
        Reassembler().feed(fragment(1, 3, 3))


def test_reassembled_garbage() -> None:
    reassembler = Reassembler()
    reassembler.feed(fragment(1, 0, 2, b"\xc1\xc1"))
    with pytest.raises(DecodeError):
        reassembler.feed(fragment(1, 1, 2, b"\xc1"))


def test_nested_fragment() -> None:
    inner = encode(Fragment(message_id=9, index=0, count=2, data=b"x" * 100))
    reassembler = Reassembler()
    assert reassembler.feed(fragment(1, 0, 2, inner[:50])) is None
    with pytest.raises(DecodeError):
        reassembler.feed(fragment(1, 1, 2, inner[50:]))


def test_too_many_partial_messages() -> None:
    reassembler = Reassembler(max_partial=2)
    assert reassembler.feed(fragment(1, 0, 2)) is None
    assert reassembler.feed(fragment(2, 0, 2)) is None
    with pytest.raises(FrameTooLarge):
        reassembler.feed(fragment(3, 0, 2))


def test_too_many_bytes_in_one_message() -> None:
    reassembler = Reassembler(max_message_bytes=50_000)
    frames = split(big_request(), max_frame_bytes=16 * 1024, message_id=0)
    with pytest.raises(FrameTooLarge):
        for f in frames:
            reassembler.feed(f)


def test_too_many_bytes_across_partial_messages() -> None:
    reassembler = Reassembler(max_message_bytes=20_000)
    assert reassembler.feed(fragment(1, 0, 2, b"a" * 9_000)) is None
    assert reassembler.feed(fragment(2, 0, 2, b"b" * 9_000)) is None
    with pytest.raises(FrameTooLarge):
        reassembler.feed(fragment(3, 0, 2, b"c" * 9_000))


def test_oversized_frame_into_reassembler() -> None:
    data = encode(TokenChunk(request_id="r", text="x" * 2_000, n_tokens=1))
    with pytest.raises(FrameTooLarge):
        Reassembler(max_frame_bytes=1_000).feed(data)


@pytest.mark.parametrize("count", [2**62, 2**63, 2**64 - 1])
def test_hostile_fragment_count_is_refused(count: int) -> None:
    # Built by hand: the model itself refuses counts msgpack or memory cannot hold.
    frame = msgpack.packb(
        [
            PROTOCOL_VERSION,
            "fragment",
            {"message_id": 1, "index": 0, "count": count, "data": b"xx"},
        ],
        use_bin_type=True,
    )
    with pytest.raises(ProtocolError):
        Reassembler().feed(frame)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0])
def test_int64_fields_encode_up_to_their_bounds(value: int) -> None:
    message = GenerateRequest(request_id="r", prompt="p", params=SamplingParams(seed=value))
    assert decode(encode(message)) == message


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1])
def test_ints_msgpack_cannot_carry_as_int64_are_refused_by_the_model(value: int) -> None:
    with pytest.raises(ValidationError, match="seed"):
        SamplingParams(seed=value)


def test_lone_surrogate_text_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="lone surrogate"):
        GenerateRequest(request_id="r", prompt="bad \ud800 text")


# ------------------------------------------------------------------------------ fuzzing

_ids = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=128)
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | _int64
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_field_names = st.sampled_from(
    [*sorted({name for cls in MESSAGE_TYPES.values() for name in cls.model_fields}), "junk"]
)
_structured_frames = st.builds(
    frame,
    st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, 0, 2, "1"]),
    st.sampled_from(sorted(MESSAGE_TYPES)) | st.text(max_size=12),
    st.dictionaries(_field_names, _msgpack_values, max_size=6) | _msgpack_values,
)
_any_frame = st.binary(max_size=512) | _structured_frames


@pytest.mark.fuzz
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(data=_any_frame)
def test_fuzz_decode_raises_only_protocol_errors(data: bytes) -> None:
    try:
        message = decode(data)
    except ProtocolError:
        return
    assert isinstance(message, Message)


_fragments = st.builds(
    fragment,
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=2, max_value=6),
    st.binary(max_size=40),
)


@pytest.mark.fuzz
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_any_frame | _fragments, max_size=12))
def test_fuzz_reassembler_raises_only_protocol_errors(frames: list[bytes]) -> None:
    reassembler = Reassembler(max_frame_bytes=1024, max_message_bytes=200, max_partial=3)
    for data in frames:
        try:
            message = reassembler.feed(data)
        except ProtocolError:
            return  # the session would be closed here
        assert message is None or (
            isinstance(message, Message) and not isinstance(message, Fragment)
        )


_token_chunks = st.builds(
    TokenChunk, request_id=_ids, text=_text, n_tokens=st.integers(min_value=0, max_value=2**32)
)
_params = st.builds(
    SamplingParams,
    max_tokens=st.none() | st.integers(min_value=1, max_value=2**31 - 1),
    temperature=st.floats(min_value=0.0, max_value=2.0),
    top_p=st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    stop=st.lists(_text, max_size=4).map(tuple),
    seed=st.none() | _int64,
)
_chat = st.builds(
    ChatMessage,
    role=st.sampled_from(["system", "user", "assistant", "tool", "developer"]),
    content=_text,
)
_generate_requests = st.one_of(
    st.builds(GenerateRequest, request_id=_ids, model=_text, prompt=_text, params=_params),
    st.builds(
        GenerateRequest,
        request_id=_ids,
        model=_text,
        messages=st.lists(_chat, max_size=5).map(tuple),
        params=_params,
    ),
)


@pytest.mark.fuzz
@given(message=_token_chunks | _generate_requests)
def test_fuzz_round_trip(message: TokenChunk | GenerateRequest) -> None:
    assert decode(encode(message), max_frame_bytes=1 << 20) == message


@pytest.mark.fuzz
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=_generate_requests,
    max_frame_bytes=st.integers(min_value=200, max_value=4096),
    message_id=st.integers(min_value=0, max_value=2**32),
)
def test_fuzz_split_round_trip(
    message: GenerateRequest, max_frame_bytes: int, message_id: int
) -> None:
    frames = split(message, max_frame_bytes=max_frame_bytes, message_id=message_id)
    assert all(len(f) <= max_frame_bytes for f in frames)
    reassembler = Reassembler(max_frame_bytes=max_frame_bytes)
    results = [reassembler.feed(f) for f in frames]
    assert results[-1] == message
    assert all(r is None for r in results[:-1])


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate-frames"]:
        sys.exit(f"usage: python -m tests.shared.test_codec --regenerate-frames\n{__doc__}")
    regenerate_frames()
