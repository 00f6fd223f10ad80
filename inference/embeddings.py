"""``EmbeddingRunner``: text embeddings from a GGUF, on a thread of their own.

It is a second llama.cpp context (``embedding=True``) on a GGUF file: a dedicated
embedding model if the operator has one, otherwise the chat model's own file, whose
weights the OS then shares between the two contexts (both map the same file). The
context is created on first use, not at start-up: it costs memory (for the bundled
SmolLM2 with 512-token inputs, about 230 MB of anonymous memory at its peak, mostly
the vocabulary-sized output buffer that llama.cpp fills for every input token) that an
agent nobody asks for embeddings should not pay.

Pooling is the model's own when its GGUF names one (``<arch>.pooling_type``: embedding
models say CLS or mean); a chat model names none, so its token states are mean-pooled.
Vectors are L2-normalised, so a dot product is a cosine similarity.

Sharing the CPU with the chat model: the runner has its own single thread and llama
context, with ``n_threads`` (default 1) of its own, so an embedding batch neither waits
behind a whole chat generation nor takes the chat model's threads. One request embeds
at a time, at most ``max_waiting`` wait (``RunnerOverloaded`` past that), and a request
is cancelled between inputs when its caller goes away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import InferenceError, ModelLoadError, RunnerOverloaded
from inference.gguf import read_gguf
from inference.models import model_name

__all__ = ["EmbeddingConfig", "EmbeddingRunner", "Embeddings", "InputTooLong"]

log = logging.getLogger(__name__)

_POOLING_NONE = 0
_POOLING_MEAN = 1
_POOLING_UNSPECIFIED = -1


class InputTooLong(InferenceError):
    """An input has more tokens than ``max_input_tokens`` and truncation was not asked."""

    def __init__(self, index: int, n_tokens: int, limit: int) -> None:
        super().__init__(
            f"input {index} has {n_tokens} tokens; at most {limit} are embedded per input"
        )
        self.index = index
        self.n_tokens = n_tokens
        self.limit = limit


@dataclass(frozen=True)
class EmbeddingConfig:
    """How to load and serve one embedding context."""

    model_path: Path
    max_input_tokens: int = 512
    """Tokens per input: the context's size and batch (a sequence is pooled in one
    batch). Memory grows with it (see the module's docstring)."""
    n_threads: int = 1
    max_waiting: int = 4

    def __post_init__(self) -> None:
        if self.max_input_tokens < 8:
            raise ValueError("max_input_tokens must be at least 8")


@dataclass(frozen=True)
class Embeddings:
    """One vector per input, in order, and the tokens they cost."""

    vectors: list[list[float]]
    prompt_tokens: int
    dimensions: int


class EmbeddingRunner:
    """Embeds texts off the event loop, one request at a time."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.config = config
        self.name = model_name(config.model_path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-embed")
        self._llm: Any = None
        self._slot = asyncio.Semaphore(1)
        self._waiting = 0
        self._closed = False
        self.embedded_inputs = 0
        """Inputs embedded since load (one writer: the runner's thread)."""

    @property
    def loaded(self) -> bool:
        """True once the context exists (after the first request) and until ``aclose``."""
        return self._llm is not None and not self._closed

    @property
    def busy(self) -> int:
        """Requests embedding or waiting to."""
        return self._waiting + (1 if self._slot.locked() else 0)

    @property
    def dimensions(self) -> int | None:
        """The vectors' length once loaded."""
        return int(self._llm.n_embd()) if self._llm is not None else None

    async def embed(
        self, texts: Sequence[str], *, truncate: bool, cancelled: threading.Event | None = None
    ) -> Embeddings:
        """Embed ``texts`` (each non-empty). Inputs past ``max_input_tokens`` are cut
        there when ``truncate``, else ``InputTooLong``; ``RunnerOverloaded`` when
        ``max_waiting`` requests already wait. Setting ``cancelled`` stops the work
        before the next input (the caller sets it when it is cancelled itself)."""
        if self._closed:
            raise ModelLoadError("the embedding model was unloaded")
        if self._slot.locked() and self._waiting >= self.config.max_waiting:
            raise RunnerOverloaded(f"{self._waiting} embedding requests already waiting")
        self._waiting += 1
        try:
            await self._slot.acquire()
        finally:
            self._waiting -= 1
        flag = cancelled if cancelled is not None else threading.Event()
        loop = asyncio.get_running_loop()
        try:
            if self._llm is None:
                await loop.run_in_executor(self._executor, self._load)
            future = loop.run_in_executor(self._executor, self._embed, list(texts), truncate, flag)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                flag.set()  # the thread stops before its next input
                raise
        finally:
            self._slot.release()

    def _load(self) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see inference.llama
        import llama_cpp

        path = self.config.model_path
        header = read_gguf(path)
        own = header.arch_int("pooling_type")
        pooling = _POOLING_MEAN if own in (None, _POOLING_NONE) else _POOLING_UNSPECIFIED
        n = self.config.max_input_tokens
        log.info("loading embedding model %s (max %d tokens per input)", path, n)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                embedding=True,
                n_ctx=n,
                n_batch=n,
                n_ubatch=n,
                n_threads=self.config.n_threads,
                n_threads_batch=self.config.n_threads,
                pooling_type=pooling,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {path} for embeddings: {exc}") from exc

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` costs as an input (runner's thread or loaded context only)."""
        return len(self._llm.tokenize(text.encode("utf-8")))

    def _embed(self, texts: list[str], truncate: bool, cancelled: threading.Event) -> Embeddings:
        llm = self._llm
        limit = self.config.max_input_tokens
        counts: list[int] = []
        for i, text in enumerate(texts):
            n = self.count_tokens(text)
            if n == 0:
                raise InferenceError(f"input {i} has no tokens for this model")
            if n > limit and not truncate:
                raise InputTooLong(i, n, limit)
            counts.append(min(n, limit))
        vectors: list[list[float]] = []
        for text in texts:
            if cancelled.is_set():
                raise asyncio.CancelledError()
            # llama-cpp-python cuts an input at n_batch (= max_input_tokens) itself.
            vector: list[float] = llm.embed(text, normalize=True, truncate=True)
            vectors.append(vector)
            self.embedded_inputs += 1
        return Embeddings(vectors, sum(counts), int(llm.n_embd()))

    async def aclose(self) -> None:
        """Wait for the thread and free the context. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._executor.shutdown, True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
