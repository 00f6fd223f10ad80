"""llama.cpp's ``llama-server`` probes: ``/health``, ``/props``, ``/tokenize``, ``/detokenize``.

Tools written for llama-server (its web UI's forks, editor plugins, benchmark scripts)
check ``/health`` before sending anything, read the context size from ``/props``, and
count tokens with ``/tokenize``. The shapes follow llama-server's; the values describe
the local model. ``/health`` answers without the API key, as llama-server's does (and as
``/healthz`` does here); the others use the model and need it.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.local_model import LocalModel
from edge_agent.errors import EngineError, RequestInvalid
from inference import InferenceError, ModelLoadError
from inference.vocab import Piece
from shared.messages import Text

__all__ = [
    "DetokenizeRequest",
    "Detokenized",
    "LlamaHealth",
    "LlamaLoading",
    "LlamaServerRoutes",
    "Props",
    "TokenizeRequest",
    "Tokenized",
]

MAX_DETOKENIZE_TOKENS = 1 << 20
"""Token ids one ``/detokenize`` may carry; the body limit bounds it first in practice."""


class LlamaHealth(BaseModel):
    status: Literal["ok"] = "ok"


class _LoadingDetail(BaseModel):
    code: int = 503
    message: str = "Loading model"
    type: str = "unavailable_error"


class LlamaLoading(BaseModel):
    """llama-server's answer while the model loads (503)."""

    error: _LoadingDetail = _LoadingDetail()


class GenerationSettings(BaseModel):
    n_ctx: int
    model: str


class Props(BaseModel):
    default_generation_settings: GenerationSettings
    total_slots: int
    model_path: str
    """The file's name: the directory layout of the device is not the client's business."""
    chat_template: str
    modalities: dict[str, bool]
    build_info: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenizeRequest(_Strict):
    content: Text
    add_special: bool = False
    parse_special: bool = True
    with_pieces: bool = False


class TokenPiece(BaseModel):
    id: int
    piece: str | list[int]


class Tokenized(BaseModel):
    tokens: list[int] | list[TokenPiece]


class DetokenizeRequest(_Strict):
    tokens: list[int] = Field(max_length=MAX_DETOKENIZE_TOKENS)


class Detokenized(BaseModel):
    content: str


class LlamaServerRoutes:
    """The llama-server handlers over the local model."""

    def __init__(self, model: LocalModel, *, build_info: str) -> None:
        self._model = model
        self._build_info = build_info

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/health", self.health)
        router.add_get("/props", self.props)
        router.add_post("/tokenize", self.tokenize)
        router.add_post("/detokenize", self.detokenize)

    async def health(self, request: web.Request) -> web.Response:
        if not self._model.engine.ready:
            return json_response(LlamaLoading(), status=503)
        return json_response(LlamaHealth())

    async def props(self, request: web.Request) -> web.Response:
        facts = await self._model.file.afacts()
        props = Props(
            default_generation_settings=GenerationSettings(
                n_ctx=self._model.n_ctx, model=self._model.file.name
            ),
            total_slots=1,
            model_path=facts.path.name,
            chat_template=facts.chat_template,
            modalities={"vision": False, "audio": False},
            build_info=self._build_info,
        )
        return json_response(props)

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await read_model(request, TokenizeRequest)
        vocab = self._model.vocabulary
        try:
            tokens = await vocab.tokenize(
                body.content, add_special=body.add_special, parse_special=body.parse_special
            )
            if not body.with_pieces:
                return json_response(Tokenized(tokens=tokens))
            pieces: list[Piece] = await vocab.pieces(tokens)
        except ModelLoadError as exc:
            raise EngineError(str(exc)) from exc
        out = [TokenPiece(id=p.id, piece=p.piece) for p in pieces]
        return json_response(Tokenized(tokens=out))

    async def detokenize(self, request: web.Request) -> web.Response:
        body = await read_model(request, DetokenizeRequest)
        try:
            content = await self._model.vocabulary.detokenize(body.tokens)
        except ModelLoadError as exc:
            raise EngineError(str(exc)) from exc
        except InferenceError as exc:
            raise RequestInvalid(str(exc), param="tokens") from exc
        return json_response(Detokenized(content=content))
