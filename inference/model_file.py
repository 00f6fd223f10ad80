"""``ModelFile``: what a GGUF on disk is, for the endpoints that describe models.

Facts come from the file's header (``inference.gguf``) and its ``stat``; the SHA-256
digest Ollama clients show and compare is computed once per process, in a thread, on
first request (a gigabyte-sized GGUF takes seconds to hash), and shared by every caller
after that.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inference.gguf import GgufHeader, read_gguf
from inference.models import model_name

__all__ = ["ModelFacts", "ModelFile", "human_count"]

_HASH_CHUNK = 1 << 20
_STOP_TOKEN_KEYS = (
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
)


def human_count(n: int) -> str:
    """A parameter count as Ollama writes it: ``134.52M``, ``7.2B``."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.2f}K"
    return str(n)


@dataclass(frozen=True)
class ModelFacts:
    """A GGUF's description, read once."""

    name: str
    path: Path
    size: int
    modified_at: datetime
    header: GgufHeader
    stop_words: tuple[str, ...]
    """The text of the end-of-turn tokens generation stops on (eos, eot, eom)."""

    @property
    def family(self) -> str:
        return self.header.architecture

    @property
    def context_length(self) -> int | None:
        """The context the model was trained for (``<arch>.context_length``)."""
        return self.header.arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self.header.arch_int("embedding_length")

    @property
    def parameter_size(self) -> str:
        return human_count(self.header.parameter_count)

    @property
    def quantization(self) -> str:
        return self.header.quantization

    @property
    def chat_template(self) -> str:
        return self.header.get_str("tokenizer.chat_template") or ""

    @property
    def license(self) -> str:
        return self.header.get_str("general.license") or ""


class ModelFile:
    """One GGUF: its facts (read on first use) and its digest (hashed on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = model_name(path)
        self._facts: ModelFacts | None = None
        self._digest: asyncio.Future[str] | None = None

    def facts(self) -> ModelFacts:
        """The header's facts (milliseconds to read, plus a pass over the vocabulary
        for the stop words); cached. Call off the event loop the first time."""
        if self._facts is None:
            header = read_gguf(self.path, keep_arrays={"tokenizer.ggml.tokens"})
            stops: list[str] = []
            for key in _STOP_TOKEN_KEYS:
                token = header.get_int(key)
                text = header.token_text(token) if token is not None else None
                if text and text not in stops:
                    stops.append(text)
            # Drop the vocabulary: tens of thousands of strings nobody needs again.
            header = read_gguf(self.path)
            stat = self.path.stat()
            self._facts = ModelFacts(
                name=self.name,
                path=self.path,
                size=stat.st_size,
                modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                header=header,
                stop_words=tuple(stops),
            )
        return self._facts

    async def afacts(self) -> ModelFacts:
        """``facts()`` without blocking the event loop."""
        if self._facts is not None:
            return self._facts
        return await asyncio.to_thread(self.facts)

    async def digest(self) -> str:
        """The file's SHA-256, hex; hashed once (in a thread), then cached."""
        if self._digest is None:
            self._digest = asyncio.ensure_future(asyncio.to_thread(self._hash))
        return await asyncio.shield(self._digest)

    def _hash(self) -> str:
        sha = hashlib.sha256()
        with self.path.open("rb") as file:
            while chunk := file.read(_HASH_CHUNK):
                sha.update(chunk)
        return sha.hexdigest()
