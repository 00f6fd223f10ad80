"""Wire messages: what edge, worker and signaling say to each other.

Every message is a frozen pydantic model; its wire ``type`` tag is the snake_case class
name. Fields are only ever added (with defaults); renaming or retyping one bumps
``PROTOCOL_VERSION`` in ``shared.codec``.

Two families share one codec:

* **data channel** (edge <-> worker, over WebRTC or the signaling relay):
  ``GenerateRequest``, ``TokenChunk``, ``StreamEnd``, ``StreamFailed``, ``Cancel``,
  ``Ping``/``Pong``; ``Fragment`` carries pieces of a message too large for one frame.
* **signaling** (peer <-> signaling server, over a WebSocket): ``Welcome``, ``Register``,
  ``LoadReport``, ``Offer``, ``Answer``, ``SignalError``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

__all__ = [
    "MAX_STOPS",
    "MAX_STOP_CHARS",
    "MESSAGE_TYPES",
    "RELAY_KEY_BYTES",
    "RESUME_HEADER",
    "Answer",
    "Cancel",
    "ChatMessage",
    "Drain",
    "ErrorCode",
    "Fragment",
    "GenerateRequest",
    "IceServer",
    "LoadReport",
    "Message",
    "Offer",
    "OutputFormat",
    "Ping",
    "Pong",
    "Register",
    "RelayAccept",
    "RelayClose",
    "RelayData",
    "RelayOpen",
    "Role",
    "SamplingParams",
    "SignalError",
    "StreamEnd",
    "StreamFailed",
    "Text",
    "TokenChunk",
    "TokenLogprob",
    "Welcome",
]


def _encodable(text: str) -> str:
    # JSON lets a client send a lone surrogate ("\\ud800"); UTF-8 (and so msgpack)
    # cannot carry it. Refuse it here, at validation, as bad input.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid Unicode (lone surrogate)") from exc
    return text


Text = Annotated[str, AfterValidator(_encodable)]
"""A string that can go on the wire."""
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""msgpack packs nothing wider."""
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
_ID = Annotated[Text, Field(min_length=1, max_length=128)]


class Role(StrEnum):
    """What a token entitles its holder to be."""

    EDGE = "edge"
    WORKER = "worker"


class ErrorCode(StrEnum):
    """Why a stream or a signaling request failed; never library text or tracebacks."""

    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    OVERLOADED = "overloaded"
    DRAINING = "draining"
    BACKEND_ERROR = "backend_error"
    CANCELLED = "cancelled"
    NO_WORKER = "no_worker"
    UNAUTHORIZED = "unauthorized"
    PROTOCOL_ERROR = "protocol_error"
    INTERNAL = "internal"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Message(BaseModel):
    """Base of every wire message; subclasses get their ``type`` tag from their name."""

    # Unknown fields are ignored, not refused: a newer peer may add fields (the protocol
    # only ever adds them) and an older one must still understand the rest.
    model_config = ConfigDict(frozen=True, extra="ignore")
    type_tag: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_tag = _snake(cls.__name__)


# --------------------------------------------------------------------------- data channel


class ChatMessage(BaseModel):
    """One turn of a conversation, already flattened to text by the edge's HTTP layer."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text


MAX_STOPS = 64
"""Stop strings one request may carry: each costs the generator a scan per token."""
MAX_STOP_CHARS = 1024
"""Longest stop string. The edge's own limits (``--max-stop-sequences``,
``--max-stop-chars``) are at most these, so that a request it accepts is one a worker
accepts; a peer that sends more breaks the protocol and loses its link."""

_Stop = Annotated[Text, Field(max_length=MAX_STOP_CHARS)]


MAX_LOGIT_BIAS = 1024
"""Token biases one request may carry (each is applied to every sampled token)."""
MAX_TOP_LOGPROBS = 20
"""Alternatives per token a request may ask for (OpenAI's own limit)."""
MAX_SCHEMA_CHARS = 65536
"""Longest JSON schema (as JSON text) a request may constrain its answer with."""

_Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class SamplingParams(BaseModel):
    """How to sample; the subset of OpenAI's (and llama.cpp's) knobs both engines honour.

    ``None`` keeps the serving engine's default: the knobs added after the first
    protocol version are all optional, so an older peer's requests mean what they meant.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    max_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    stop: tuple[_Stop, ...] = Field(default=(), max_length=MAX_STOPS)
    seed: Int64 | None = None
    top_k: int | None = Field(default=None, ge=0, le=2**31 - 1)
    """0 disables it (llama.cpp's meaning)."""
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    presence_penalty: _Penalty | None = None
    frequency_penalty: _Penalty | None = None
    logit_bias: tuple[tuple[Annotated[int, Field(ge=0, le=2**31 - 1)], float], ...] = Field(
        default=(), max_length=MAX_LOGIT_BIAS
    )
    """(token id, bias in [-100, 100]) pairs; token ids are the serving model's own."""
    logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    """Report each generated token's log-probability and its ``logprobs`` most likely
    alternatives (``TokenChunk.logprobs``); ``None``: report none."""
    num_ctx: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """Context window to use (Ollama's ``num_ctx``): prompt and answer must fit in it;
    more than the serving model's own window is refused, not silently shrunk."""

    @model_validator(mode="after")
    def _bias_range(self) -> SamplingParams:
        if any(not -100.0 <= bias <= 100.0 for _, bias in self.logit_bias):
            raise ValueError("logit_bias values must be within [-100, 100]")
        return self


class OutputFormat(BaseModel):
    """A constraint on the answer: JSON, matching ``schema_text`` when set.

    The schema travels as JSON text (not a nested structure): it is opaque to the wire,
    bounded by one length check, and hashes as is for the engines' grammar caches. Tool
    calls use it too: the edge turns ``tools``/``tool_choice`` into the schema of a call
    (``edge_agent.api.tools``), so a worker needs nothing tool-specific.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    schema_text: Text | None = Field(default=None, max_length=MAX_SCHEMA_CHARS)
    """A JSON schema as JSON text; ``None``: any JSON object (``json_object`` mode)."""
    name: Text = Field(default="output", max_length=64)
    """The schema's name, for engines that want one (OpenAI's ``json_schema.name``)."""
    strict: bool = True


class GenerateRequest(Message):
    """Ask a worker to generate; exactly one of ``messages`` (chat) or ``prompt``."""

    request_id: _ID
    model: Text = ""
    messages: tuple[ChatMessage, ...] | None = None
    prompt: Text | None = None
    params: SamplingParams = SamplingParams()
    continuation: Text = ""
    """Text already delivered to the client by an earlier attempt (a failed worker):
    generation resumes after it, as if the model had written it."""
    output: OutputFormat | None = None
    """Constrain the answer to JSON (structured output, tool calls); ``None``: free text."""

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("exactly one of messages or prompt must be set")
        return self


class TokenLogprob(BaseModel):
    """One generated token's log-probability under the model (before sampling knobs),
    with the most likely alternatives when asked for."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    token: Text
    logprob: float
    top: tuple[tuple[Text, float], ...] = Field(default=(), max_length=MAX_TOP_LOGPROBS)


class TokenChunk(Message):
    """Text generated since the previous chunk: ``n_tokens`` tokens coalesced."""

    request_id: _ID
    text: Text
    n_tokens: Count
    logprobs: tuple[TokenLogprob, ...] = ()
    """Set only when the request asked (``SamplingParams.logprobs``): one per token.
    Left out of the frame when empty: chunks are the hot path, and a frame without it
    is exactly what a peer that predates it sends."""

    @model_serializer(mode="wrap")
    def _logprobs_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.logprobs:
            data.pop("logprobs", None)
        return data


class StreamEnd(Message):
    """The stream finished normally; carries the usage figures."""

    request_id: _ID
    finish_reason: Literal["stop", "length"]
    prompt_tokens: Count
    completion_tokens: Count


class StreamFailed(Message):
    """The stream failed; ``retryable`` tells the edge whether another worker may succeed."""

    request_id: _ID
    code: ErrorCode
    message: Text = Field(max_length=1024)
    retryable: bool = False


class Cancel(Message):
    """The edge no longer wants this request (client went away)."""

    request_id: _ID


class Ping(Message):
    """Liveness probe; the other side answers with a ``Pong`` carrying the same nonce."""

    nonce: Int64


class Pong(Message):
    """Answer to a ``Ping``."""

    nonce: Int64


class Drain(Message):
    """The worker is going away (spot preemption, shutdown): it finishes what it can
    within ``deadline_s`` and refuses new streams; the edge should move on."""

    deadline_s: float = Field(ge=0)


class Fragment(Message):
    """One piece of an encoded message larger than the channel's frame limit."""

    message_id: Count
    index: Count
    count: Annotated[int, Field(ge=2, le=2**63 - 1)]
    data: bytes


# ------------------------------------------------------------------------------ signaling


class IceServer(BaseModel):
    """One entry of an RTCConfiguration's ``iceServers``."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    urls: tuple[Text, ...]
    username: Text | None = None
    credential: Text | None = None


RESUME_HEADER = "X-Tandem-Resume"
"""Upgrade-request header in which a reconnecting peer presents its last ``Welcome.resume``."""


class Welcome(Message):
    """Signaling's first word to an authenticated peer."""

    peer_id: _ID
    role: Role
    ice_servers: tuple[IceServer, ...] = ()
    resume: str | None = Field(default=None, max_length=128, repr=False)
    """This connection's resume secret: presented in ``RESUME_HEADER`` when the peer
    reconnects, it lets the new connection replace this one at once instead of after a
    liveness probe (``signaling.resume``). Sent only to its own peer; never logged."""


class Register(Message):
    """A worker announces what it serves and how many streams it takes at once."""

    models: tuple[Text, ...] = Field(min_length=1)
    capacity: int = Field(ge=1, le=2**31 - 1)


class LoadReport(Message):
    """A worker's current number of active streams (and whether it is draining)."""

    active: int = Field(ge=0, le=2**31 - 1)
    draining: bool = False


MAX_AVOID = 16
"""Workers one request for a session may ask signaling to pass over."""


class Offer(Message):
    """An SDP offer. The edge sends it with ``model`` set; signaling forwards it to the
    chosen worker with ``peer_id`` set to the edge's id. ``avoid`` names workers not to
    choose (the edge's warm standby must be another worker than its primary); a server
    that predates it ignores it, and the edge checks who answered."""

    session_id: _ID
    sdp: Text = Field(max_length=65536)
    model: Text = ""
    peer_id: Text = ""
    avoid: tuple[Text, ...] = Field(default=(), max_length=MAX_AVOID)


class Answer(Message):
    """The worker's SDP answer for ``session_id``; signaling forwards it to the edge,
    with ``peer_id`` set to the worker's id. ``model`` names what the worker serves."""

    session_id: _ID
    sdp: Text = Field(max_length=65536)
    peer_id: Text = ""
    model: Text = ""


RELAY_KEY_BYTES = 32
"""An X25519 public key."""


class RelayOpen(Message):
    """Ask for a relayed session (no WebRTC path): frames then travel over the two
    signaling WebSockets. The edge sends ``model``; signaling forwards it to the chosen
    worker with ``peer_id`` set to the edge's id."""

    session_id: _ID
    model: Text = ""
    peer_id: Text = ""
    avoid: tuple[Text, ...] = Field(default=(), max_length=MAX_AVOID)
    """As ``Offer.avoid``."""
    key: bytes = Field(default=b"", max_length=RELAY_KEY_BYTES)
    """The edge's ephemeral X25519 public key for this session (``link.relay_crypto``),
    carried through signaling like a DTLS fingerprint in SDP. Empty from an edge that
    predates encrypted relays: workers refuse that."""


class RelayAccept(Message):
    """The worker takes the relayed session; forwarded to the edge with ``peer_id`` set
    to the worker's id and ``model`` to what it serves."""

    session_id: _ID
    model: Text = ""
    peer_id: Text = ""
    key: bytes = Field(default=b"", max_length=RELAY_KEY_BYTES)
    """The worker's ephemeral X25519 public key, as ``RelayOpen.key``; edges refuse an
    accept without one."""


class RelayData(Message):
    """One data-channel frame of a relayed session, carried through signaling: since
    ``RelayOpen.key``, always end-to-end ciphertext (``link.relay_crypto``)."""

    session_id: _ID
    data: bytes


class RelayClose(Message):
    """Either side (or signaling, when a side goes away) ends a relayed session."""

    session_id: _ID
    reason: Text = Field(default="", max_length=256)


class SignalError(Message):
    """Signaling refused something; ``session_id`` set when it concerns one offer."""

    code: ErrorCode
    message: Text = Field(max_length=1024)
    session_id: Text | None = None


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.type_tag: cls
    for cls in (
        GenerateRequest,
        TokenChunk,
        StreamEnd,
        StreamFailed,
        Cancel,
        Ping,
        Pong,
        Drain,
        Fragment,
        Welcome,
        Register,
        LoadReport,
        Offer,
        Answer,
        RelayOpen,
        RelayAccept,
        RelayData,
        RelayClose,
        SignalError,
    )
}
