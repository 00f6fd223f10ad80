"""``Vocabulary``: a model's tokenizer alone, for llama-server's ``/tokenize`` and
``/detokenize``.

It is the GGUF loaded with ``vocab_only`` (megabytes, no weights, no context), apart
from the chat model's context, so that tokenizing never waits for a generation and
never touches the generating thread's llama object. Calls run in a worker thread (a
megabyte of text takes a while to tokenize) and may run concurrently: llama.cpp's
tokenizer only reads the vocabulary.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import InferenceError, ModelLoadError

__all__ = ["Piece", "Vocabulary"]


@dataclass(frozen=True)
class Piece:
    """One token and its text: a string, or its bytes when they are not valid UTF-8 on
    their own (part of a multi-byte character), as llama-server reports them."""

    id: int
    piece: str | list[int]


class Vocabulary:
    """Tokenize and detokenize with one model's vocabulary."""

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._llm: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._llm is None:
                import llama_cpp

                try:
                    self._llm = llama_cpp.Llama(
                        model_path=str(self.model_path), vocab_only=True, verbose=False
                    )
                except (ValueError, RuntimeError) as exc:
                    raise ModelLoadError(f"llama.cpp could not read {self.model_path}") from exc
            return self._llm

    async def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        """``text``'s token ids; ``add_special`` adds BOS where the model wants one,
        ``parse_special`` reads ``<|im_end|>``-style text as the special token."""

        def run() -> list[int]:
            llm = self._loaded()
            return list(
                llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)
            )

        return await asyncio.to_thread(run)

    async def pieces(self, tokens: Sequence[int]) -> list[Piece]:
        """Each token's own text (special tokens rendered)."""

        def run() -> list[Piece]:
            llm = self._loaded()
            self._check(llm, tokens)
            out: list[Piece] = []
            for token in tokens:
                raw: bytes = llm.detokenize([token], special=True)
                try:
                    out.append(Piece(token, raw.decode("utf-8")))
                except UnicodeDecodeError:
                    out.append(Piece(token, list(raw)))
            return out

        return await asyncio.to_thread(run)

    async def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (special tokens rendered); ids out of the vocabulary
        raise ``InferenceError`` (llama.cpp would read past its table)."""

        def run() -> str:
            llm = self._loaded()
            self._check(llm, tokens)
            raw: bytes = llm.detokenize(list(tokens), special=True)
            return raw.decode("utf-8", "replace")

        return await asyncio.to_thread(run)

    async def n_vocab(self) -> int:
        return int((await asyncio.to_thread(self._loaded)).n_vocab())

    @staticmethod
    def _check(llm: Any, tokens: Sequence[int]) -> None:
        n_vocab = int(llm.n_vocab())
        for i, token in enumerate(tokens):
            if not 0 <= token < n_vocab:
                raise InferenceError(
                    f"tokens[{i}]: {token} is not a token id of this model (0..{n_vocab - 1})"
                )

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
