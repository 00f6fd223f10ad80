"""What Ollama clients ask before they generate: ``/``, ``/api/version``, ``/api/tags``,
``/api/show``, ``/api/ps``.

Continue calls ``/api/show`` at start-up for the context length and stop words, Open WebUI
polls ``/api/ps`` and lists ``/api/tags``, and most tools check that ``/`` answers 200.
The answers describe the local GGUF from its own header (``inference.model_file``):
architecture, trained context length, quantization, parameter count, chat template,
end-of-turn tokens; sizes and a SHA-256 digest of the file itself (Ollama's digest names
its manifest; there is none here, so the file's is the honest equivalent).

Names are those of ``ModelNames``: ``auto`` and ``edge`` describe the local file (``auto``
falls back to it and is served by it whenever the router keeps a request local);
``cloud`` is described only by name, since the workers' model is not on this device.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.local_model import LocalModel
from edge_agent.errors import ModelNotFound
from edge_agent.serving import AUTO_MODEL, ModelNames
from inference.gguf import GgufArray
from inference.model_file import ModelFacts, ModelFile
from shared.messages import Text

__all__ = [
    "CHAT_CAPABILITIES",
    "OLLAMA_VERSION",
    "ROOT_TEXT",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaProbeRoutes",
    "OllamaRunning",
    "OllamaRunningModel",
    "OllamaShowRequest",
    "OllamaShowResponse",
    "OllamaTags",
    "OllamaVersion",
]

OLLAMA_VERSION = "0.6.0"
"""The Ollama API version claimed; clients gate features on it. Everything Ollama had
by 0.6.0 that clients use is served here (``/api/embed``, ``/api/show`` with
``model_info``, ``/api/ps``; ``format`` and ``tools`` with the structured-output work);
what came later (``think``, 0.9) is not, so a newer number would claim it."""

ROOT_TEXT = "Tandem is running (Ollama-compatible API)"
"""``GET /``: Ollama answers "Ollama is running"; clients check for a 200, and this is not
Ollama."""

CHAT_CAPABILITIES: tuple[str, ...] = ("completion", "tools")
"""What every chat model name does, local or cloud (``embedding`` is added when the chat
model's own file serves them). ``tools`` matters: Ollama itself refuses tool calls to a
model that does not list it, so clients written against Ollama read it to decide
whether to offer them; ``/api/chat`` honours ``tools`` on every chat name."""


class OllamaModelDetails(BaseModel):
    parent_model: str = ""
    format: str = "gguf"
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class OllamaModel(BaseModel):
    """One ``/api/tags`` entry."""

    name: str
    model: str
    modified_at: str
    size: int = 0
    digest: str = ""
    details: OllamaModelDetails = OllamaModelDetails()


class OllamaTags(BaseModel):
    models: list[OllamaModel]


class OllamaVersion(BaseModel):
    version: str


class OllamaShowRequest(BaseModel):
    """``model`` (or the older ``name``); ``verbose`` would ask for the vocabulary
    arrays, which are not served."""

    model_config = ConfigDict(extra="ignore")

    model: Text = Field(validation_alias=AliasChoices("model", "name"))
    """``""`` describes ``auto``, as an empty name means ``auto`` for generation."""
    verbose: Literal[False] = False

    @field_validator("verbose", mode="before")
    @classmethod
    def _not_verbose(cls, value: object) -> object:
        if value is True:
            raise ValueError("the vocabulary arrays are not served; leave verbose out")
        return value


class OllamaShowResponse(BaseModel):
    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    details: OllamaModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class OllamaRunningModel(BaseModel):
    """One ``/api/ps`` entry: a model loaded in memory."""

    name: str
    model: str
    size: int
    """The GGUF's size: its weights, mapped into memory (contexts come on top)."""
    digest: str
    details: OllamaModelDetails
    expires_at: str | None = None
    """Never: the edge keeps its models loaded for its lifetime."""
    size_vram: int = 0
    context_length: int


class OllamaRunning(BaseModel):
    models: list[OllamaRunningModel]


def _details(facts: ModelFacts) -> OllamaModelDetails:
    return OllamaModelDetails(
        family=facts.family,
        families=[facts.family] if facts.family else None,
        parameter_size=facts.parameter_size,
        quantization_level=facts.quantization,
    )


def _model_info(facts: ModelFacts) -> dict[str, Any]:
    """The header's metadata as Ollama shows it: scalars, arrays as null, the template
    apart (it is ``template``), and the parameter count."""
    info: dict[str, Any] = {}
    for key, value in facts.header.metadata.items():
        if key == "tokenizer.chat_template":
            continue
        info[key] = None if isinstance(value, GgufArray) else value
    info["general.parameter_count"] = facts.header.parameter_count
    return dict(sorted(info.items()))


def _stamp(facts: ModelFacts) -> str:
    return facts.modified_at.isoformat().replace("+00:00", "Z")


class OllamaProbeRoutes:
    """The probe handlers, over the local model and the agent's model names."""

    def __init__(self, model: LocalModel, names: ModelNames) -> None:
        self._model = model
        self._names = names

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.root)
        router.add_get("/api/version", self.version)
        router.add_get("/api/tags", self.tags)
        router.add_post("/api/show", self.show)
        router.add_get("/api/ps", self.ps)

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text=ROOT_TEXT)

    async def version(self, request: web.Request) -> web.Response:
        return json_response(OllamaVersion(version=OLLAMA_VERSION))

    def _capabilities(self, file: ModelFile) -> list[str]:
        caps: list[str] = []
        if file is self._model.file:
            caps += CHAT_CAPABILITIES
        if file is self._model.embedding_file:
            caps.append("embedding")
        return caps

    def _file_for(self, name: str) -> ModelFile | None:
        """The file describing ``name`` (``None``: the cloud's); ``ModelNotFound`` if
        the agent does not answer to it."""
        name = name.strip().removesuffix(":latest")
        embedding = self._model.embedding_file
        if self._model.separate_embedding_model and name == embedding.name:
            return embedding
        if name in ("", AUTO_MODEL):
            return self._model.file
        if not self._names.known(name):
            raise ModelNotFound(name)
        route = self._names.requested_route(name, None)
        return None if route == "cloud" else self._model.file

    async def _entry(self, name: str, file: ModelFile | None) -> OllamaModel:
        if file is None:
            return OllamaModel(name=name, model=name, modified_at="1970-01-01T00:00:00Z")
        facts = await file.afacts()
        return OllamaModel(
            name=name,
            model=name,
            modified_at=_stamp(facts),
            size=facts.size,
            digest=await file.digest(),
            details=_details(facts),
        )

    async def tags(self, request: web.Request) -> web.Response:
        names = self._names.ids()
        if self._model.separate_embedding_model:
            names.append(self._model.embedding_file.name)
        models = [await self._entry(name, self._file_for(name)) for name in names]
        return json_response(OllamaTags(models=models))

    async def show(self, request: web.Request) -> web.Response:
        body = await read_model(request, OllamaShowRequest)
        file = self._file_for(body.model)
        if file is None:
            return json_response(
                OllamaShowResponse(
                    details=OllamaModelDetails(format=""),
                    model_info={},
                    capabilities=list(CHAT_CAPABILITIES),
                    modified_at="1970-01-01T00:00:00Z",
                )
            )
        facts = await file.afacts()
        params = []
        if file is self._model.file:
            params.append(f"num_ctx {self._model.n_ctx}")
        # Quoted as JSON strings: Continue parses each value with JSON.parse.
        params += [f"stop {json.dumps(stop, ensure_ascii=False)}" for stop in facts.stop_words]
        modelfile = "\n".join(
            [
                "# Describes the model Tandem serves; Ollama cannot build from it.",
                f"FROM {facts.path.name}",
                *(f"PARAMETER {p}" for p in params),
            ]
        )
        answer = OllamaShowResponse(
            license=facts.license,
            modelfile=modelfile + "\n",
            parameters="\n".join(params),
            template=facts.chat_template,
            details=_details(facts),
            model_info=_model_info(facts),
            capabilities=self._capabilities(file),
            modified_at=_stamp(facts),
        )
        return json_response(answer)

    async def ps(self, request: web.Request) -> web.Response:
        loaded: list[tuple[ModelFile, int]] = []
        if self._model.engine.ready:
            loaded.append((self._model.file, self._model.n_ctx))
        embedder = self._model.embedder
        if embedder.loaded and self._model.separate_embedding_model:
            loaded.append((self._model.embedding_file, embedder.config.max_input_tokens))
        models = []
        for file, n_ctx in loaded:
            facts = await file.afacts()
            models.append(
                OllamaRunningModel(
                    name=file.name,
                    model=file.name,
                    size=facts.size,
                    digest=await file.digest(),
                    details=_details(facts),
                    context_length=n_ctx,
                )
            )
        return json_response(OllamaRunning(models=models))
