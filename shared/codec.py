"""The msgpack frame codec: messages to bytes and back, with fragmentation.

A frame is the msgpack array ``[PROTOCOL_VERSION, type_tag, fields]``. A message whose
encoding exceeds the channel's frame limit is sent as ``Fragment`` frames and put back
together by a ``Reassembler``, which bounds how much it will hold so that a hostile
peer cannot make us buffer without limit.

Only ``ProtocolError`` subclasses escape ``decode``; anything the peer sends that we do
not understand is its problem, not ours.
"""

from __future__ import annotations

from collections import OrderedDict

import msgpack
from pydantic import ValidationError

from shared.errors import DecodeError, FrameTooLarge, UnknownMessage, VersionMismatch
from shared.messages import MESSAGE_TYPES, Fragment, Message

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "Reassembler",
    "decode",
    "encode",
    "split",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest encoded message either side puts back together from fragments. It is part of
the protocol, not a setting: a peer that receives more drops the whole link (every
stream on it), so the sender must know the receiver's limit; ``FramedLink.send`` refuses
to send more, and the edge refuses requests that would not fit (413)."""
# msgpack envelope of a Fragment around its data: version, tag, four keys, small ints.
_FRAGMENT_OVERHEAD = 96


def encode(message: Message) -> bytes:
    """Encode one message as one frame (no size check: see ``split``)."""
    fields = message.model_dump(mode="python", exclude_defaults=False)
    packed: bytes = msgpack.packb([PROTOCOL_VERSION, message.type_tag, fields], use_bin_type=True)
    return packed


def decode(data: bytes, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Message:
    """Decode one frame; raises a ``ProtocolError`` subclass on anything unacceptable."""
    if len(data) > max_frame_bytes:
        raise FrameTooLarge(f"frame of {len(data)} bytes exceeds limit {max_frame_bytes}")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # ExtraData, FormatError, ...
        raise DecodeError("frame is not valid msgpack") from exc
    if not isinstance(obj, list) or len(obj) != 3:
        raise DecodeError("frame is not a [version, type, fields] array")
    version, tag, fields = obj
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(f"peer speaks protocol {version!r}, we speak {PROTOCOL_VERSION}")
    if not isinstance(tag, str) or not isinstance(fields, dict):
        raise DecodeError("frame type must be a string and fields a map")
    cls = MESSAGE_TYPES.get(tag)
    if cls is None:
        raise UnknownMessage(f"unknown message type {tag[:64]!r}")
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise DecodeError(f"invalid {tag}: {exc.error_count()} field error(s)") from exc


def split(message: Message, *, max_frame_bytes: int, message_id: int) -> list[bytes]:
    """Encode ``message`` as frames of at most ``max_frame_bytes`` each.

    ``message_id`` must be unique among the sender's messages in flight on the channel;
    a counter per channel is enough.
    """
    data = encode(message)
    if len(data) <= max_frame_bytes:
        return [data]
    piece = max_frame_bytes - _FRAGMENT_OVERHEAD
    if piece <= 0:
        raise ValueError(f"max_frame_bytes {max_frame_bytes} too small to fragment")
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    return [
        encode(Fragment(message_id=message_id, index=i, count=len(chunks), data=chunk))
        for i, chunk in enumerate(chunks)
    ]


class Reassembler:
    """Turns a channel's frames back into messages, holding partial ones within bounds.

    One per channel direction. ``feed`` returns the decoded message when a frame
    completes one (or is whole by itself), else ``None``.
    """

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_partial: int = 64,
    ) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._max_message_bytes = max_message_bytes
        self._max_partial = max_partial
        self._partial: OrderedDict[int, tuple[int, dict[int, bytes]]] = OrderedDict()
        self._partial_bytes = 0

    def feed(self, data: bytes) -> Message | None:
        message = decode(data, max_frame_bytes=self._max_frame_bytes)
        if not isinstance(message, Fragment):
            return message
        return self._add(message)

    def _add(self, frag: Fragment) -> Message | None:
        # Every fragment carries at least one byte, so a count above the byte limit is a
        # lie; parts are kept as they arrive, never preallocated from the peer's count.
        if frag.count > self._max_message_bytes:
            raise FrameTooLarge(f"fragment count {frag.count} exceeds the message limit")
        entry = self._partial.get(frag.message_id)
        if entry is None:
            if len(self._partial) >= self._max_partial:
                raise FrameTooLarge(f"more than {self._max_partial} fragmented messages in flight")
            entry = (frag.count, {})
            self._partial[frag.message_id] = entry
        count, parts = entry
        if frag.count != count or frag.index >= count or frag.index in parts:
            raise DecodeError(f"inconsistent fragment {frag.index}/{frag.count}")
        self._partial_bytes += len(frag.data)
        if self._partial_bytes > self._max_message_bytes:
            raise FrameTooLarge(f"reassembly exceeds {self._max_message_bytes} bytes")
        parts[frag.index] = frag.data
        if len(parts) < count:
            return None
        del self._partial[frag.message_id]
        whole = b"".join(parts[i] for i in range(count))
        self._partial_bytes -= len(whole)
        message = decode(whole, max_frame_bytes=self._max_message_bytes)
        if isinstance(message, Fragment):
            raise DecodeError("nested fragment")
        return message
