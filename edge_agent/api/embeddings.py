"""Embeddings: OpenAI's ``/v1/embeddings``, Ollama's ``/api/embed`` and legacy ``/api/embeddings``.

They are always served locally, by ``inference.EmbeddingRunner`` (``--embedding-model``,
or the chat model's file mean-pooled): the cloud protocol carries generations only, and
an embedding is cheap enough for the edge. A vector from one model is meaningless
beside another's, so which model embeds is fixed, and every answer names it.

Refused by name (400), never ignored: token-array inputs (their ids would be read in
this model's vocabulary, not the client's: LangChain's ``OpenAIEmbeddings`` sends
tiktoken ids unless ``check_embedding_ctx_length=False``), a ``dimensions`` other than
the model's, Ollama ``options`` (none applies to an embedding) and ``keep_alive: 0`` (the
model stays loaded), the ``cloud`` model or route, and any field not listed here.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.local_model import LocalModel
from edge_agent.errors import (
    ContextTooLong,
    EngineError,
    GenerationFailed,
    ModelNotFound,
    Overloaded,
    RequestInvalid,
    RequestTimeout,
)
from edge_agent.serving import AUTO_MODEL, EDGE_MODEL, ROUTE_HEADER, ModelNames
from inference import InferenceError, ModelLoadError, RunnerOverloaded
from inference.embeddings import Embeddings, InputTooLong
from shared.messages import Text

__all__ = [
    "EmbeddingData",
    "EmbeddingList",
    "EmbeddingRequest",
    "EmbeddingRoutes",
    "EmbeddingUsage",
    "OllamaEmbedRequest",
    "OllamaEmbedResponse",
    "OllamaEmbeddingsRequest",
    "OllamaEmbeddingsResponse",
]


TOKEN_ARRAYS_REFUSED = (
    "token arrays are not accepted (their ids would be read in this model's vocabulary); "
    "send text. LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False)."
)


def _refuse_token_arrays(value: object) -> None:
    """Token-id inputs, refused with the reason (before the type check says "not a
    string" about them)."""
    if isinstance(value, list) and any(
        isinstance(item, int | list) and not isinstance(item, bool) for item in value
    ):
        raise ValueError(TOKEN_ARRAYS_REFUSED)


_NO_OPTIONS: dict[str, Any] = {"maxProperties": 0}
"""Documents that Ollama ``options`` must be empty here (the handler names the key)."""


class _Strict(BaseModel):
    """Unknown fields are refused, by name: none of them could be honoured."""

    model_config = ConfigDict(extra="forbid")


class EmbeddingRequest(_Strict):
    """OpenAI's embeddings body."""

    input: Text | list[Text] = Field(min_length=1)
    """Empty strings inside a list are refused by the handler, naming their index."""
    model: Text = ""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    """An end-user id for abuse tracking: nothing to honour beyond accepting it."""

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_arrays(cls, value: object) -> object:
        _refuse_token_arrays(value)
        return value


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str
    """Floats, or base64 of little-endian float32 (``encoding_format: base64``)."""


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class OllamaEmbedRequest(_Strict):
    """Ollama's ``/api/embed`` body."""

    model: Text
    input: Text | list[Text] = ""
    truncate: bool = True
    """Cut inputs at ``--embedding-max-input-tokens`` (Ollama's default); false: 400."""
    options: dict[str, Any] | None = Field(default=None, json_schema_extra=_NO_OPTIONS)
    keep_alive: float | str | None = None
    dimensions: int | None = Field(default=None, ge=1)

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_arrays(cls, value: object) -> object:
        _refuse_token_arrays(value)
        return value


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEmbeddingsRequest(_Strict):
    """Ollama's legacy ``/api/embeddings`` body."""

    model: Text
    prompt: Text = ""
    options: dict[str, Any] | None = Field(default=None, json_schema_extra=_NO_OPTIONS)
    keep_alive: float | str | None = None


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]


class EmbeddingRoutes:
    """The three embedding endpoints over one ``LocalModel``."""

    def __init__(self, model: LocalModel, names: ModelNames, *, timeout_s: float) -> None:
        self._model = model
        self._names = names
        self._timeout_s = timeout_s

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/embeddings", self.openai)
        router.add_post("/api/embed", self.embed)
        router.add_post("/api/embeddings", self.legacy)

    def _check_model(self, request: web.Request, model: str) -> None:
        """Any local name (or ``auto``) embeds locally; the cloud cannot embed."""
        name = model.strip().removesuffix(":latest")
        local = {"", AUTO_MODEL, EDGE_MODEL, self._model.embedding_file.name}
        if name not in local and not self._names.known(name):
            raise ModelNotFound(name)  # 404, as for generation
        if name not in local and self._names.requested_route(name, None) == "cloud":
            raise RequestInvalid(
                f"model: '{name}' does not serve embeddings; they are computed on this "
                f"device (use '{EDGE_MODEL}' or '{AUTO_MODEL}').",
                param="model",
            )
        header = request.headers.get(ROUTE_HEADER)
        # Validated as for generation (an unknown value is a 400), then refused if cloud.
        if header is not None and self._names.requested_route(None, header) == "cloud":
            raise RequestInvalid(
                f"{ROUTE_HEADER}: cloud does not serve embeddings; they are computed locally."
            )

    async def _dimensions(self) -> int | None:
        facts = await self._model.embedding_file.afacts()
        return facts.embedding_length

    async def _check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None:
            return
        own = await self._dimensions()
        if dimensions != own:
            raise RequestInvalid(
                f"dimensions: this model's embeddings have {own} dimensions and cannot be "
                f"shortened (got {dimensions}); leave dimensions out.",
                param="dimensions",
            )

    def _check_count(self, texts: list[str], param: str) -> None:
        limit = self._model.max_embedding_inputs
        if len(texts) > limit:
            raise RequestInvalid(
                f"{param}: at most {limit} inputs per request (got {len(texts)}; "
                "--embedding-max-inputs).",
                param=param,
            )
        for i, text in enumerate(texts):
            if not text:
                where = f"{param}[{i}]" if len(texts) > 1 else param
                raise RequestInvalid(f"{where}: an input must not be empty.", param=where)

    async def _run(self, texts: list[str], *, truncate: bool, param: str) -> Embeddings:
        cancelled = threading.Event()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._model.embedder.embed(
                    texts, truncate=truncate, cancelled=cancelled
                )
        except TimeoutError as exc:
            raise RequestTimeout(
                f"The embeddings were not computed within {self._timeout_s:g} s."
            ) from exc
        except InputTooLong as exc:
            where = f"{param}[{exc.index}]" if len(texts) > 1 else param
            error = ContextTooLong(
                f"{where}: {exc.n_tokens} tokens; at most {exc.limit} are embedded per "
                "input (--embedding-max-input-tokens)."
            )
            error.param = where
            raise error from exc
        except RunnerOverloaded as exc:
            raise Overloaded(str(exc), retry_after_s=1) from exc
        except ModelLoadError as exc:
            raise EngineError(f"the embedding model could not be loaded: {exc}") from exc
        except InferenceError as exc:
            raise RequestInvalid(f"{param}: {exc}", param=param) from exc
        except RuntimeError as exc:  # llama.cpp decode failures
            raise GenerationFailed(f"embedding failed: {exc}") from exc

    async def openai(self, request: web.Request) -> web.Response:
        body = await read_model(request, EmbeddingRequest)
        self._check_model(request, body.model)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        self._check_count(texts, "input")
        await self._check_dimensions(body.dimensions)
        result = await self._run(texts, truncate=False, param="input")
        data = [
            EmbeddingData(index=i, embedding=_encode(v, body.encoding_format))
            for i, v in enumerate(result.vectors)
        ]
        tokens = result.prompt_tokens
        usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        model = self._model.embedding_file.name
        return json_response(EmbeddingList(data=data, model=model, usage=usage))

    @staticmethod
    def _check_ollama_extras(
        options: dict[str, Any] | None, keep_alive: float | str | None
    ) -> None:
        if options:
            key = next(iter(options))
            raise RequestInvalid(
                f"options.{key}: no option applies to embeddings here; leave options out.",
                param=f"options.{key}",
            )
        if keep_alive is not None and str(keep_alive).strip() in ("0", "0.0", "0s", "0m"):
            raise RequestInvalid(
                "keep_alive: 0 asks to unload the model; the edge keeps it loaded.",
                param="keep_alive",
            )

    async def embed(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        body = await read_model(request, OllamaEmbedRequest)
        self._check_model(request, body.model)
        self._check_ollama_extras(body.options, body.keep_alive)
        await self._check_dimensions(body.dimensions)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if texts == [""]:
            texts = []  # Ollama's "load the model" call
        self._check_count(texts, "input")
        if texts:
            result = await self._run(texts, truncate=body.truncate, param="input")
            vectors, tokens = result.vectors, result.prompt_tokens
        else:
            vectors, tokens = [], 0
        answer = OllamaEmbedResponse(
            model=body.model,
            embeddings=vectors,
            total_duration=int((time.monotonic() - started) * 1e9),
            load_duration=0,
            prompt_eval_count=tokens,
        )
        return json_response(answer)

    async def legacy(self, request: web.Request) -> web.Response:
        body = await read_model(request, OllamaEmbeddingsRequest)
        self._check_model(request, body.model)
        self._check_ollama_extras(body.options, body.keep_alive)
        if not body.prompt:  # Ollama answers an empty prompt with an empty embedding
            return json_response(OllamaEmbeddingsResponse(embedding=[]))
        result = await self._run([body.prompt], truncate=True, param="prompt")
        return json_response(OllamaEmbeddingsResponse(embedding=result.vectors[0]))


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        import numpy as np  # here: an edge starts without numpy (llama_cpp brings it)

        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector
