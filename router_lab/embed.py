"""Embeddings of labelled prompts from the local model, cached for the lab.

Two representations of the same bundled SmolLM2 GGUF, both mean pooled over the prompt's
tokens:

- ``model``: the transformer's last hidden states through llama.cpp
  (``llama_cpp.Llama(embedding=True)``), what "the local model's own embeddings" means.
  It costs a prefill of the prompt, so it is measured for what it would buy, then for
  what it costs on one core (``router_lab.lowo`` reports both).
- ``table``: the model's *input* token-embedding table (``token_embd`` in the GGUF), read
  with the ``gguf`` package: a tokenizer pass and a table look-up, no transformer.
- ``split``: the same table, the ask read apart from the rest (``embed_items``).
- ``hidden``: the transformer's last hidden state at the text's last token (its last
  ``HIDDEN_TOKENS`` tokens), what a causal model's own state says about the text as a
  whole; ``hidden_split`` reads the focus text and the routing text that way, as
  ``split`` does with the table. Measured for what it would buy: like ``model`` it costs
  a prefill, far past the router's budget (docs/router.md, round 5).
- ``prompt``: the bundled model's last hidden state at the end of the whole templated
  conversation, read through the edge's own runner (``LlamaRunner.prompt_state``): what
  the router's second look reads after a local answer's prefill
  (``edge_agent.router.second``). A prompt past the runner's context has none (a row of
  NaN: the policy sends it to the cloud before any look).

What the other kinds embed is the conversation's last ask with a little of its history
as context: the last user message (its last ``ASK_TOKENS`` tokens) preceded by the end
of the turn before it (``CONTEXT_TOKENS``), so an easy follow-up after hard turns reads
as the follow-up it is.

The cache (``router_lab/.cache/``, gitignored) is keyed by the text's SHA-256, so
relabelling or adding files reuses what was computed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from inference import LlamaRunner

from edge_agent.router.table import ASK_CHARS, CONTEXT_CHARS, focus_text, routing_text
from edge_agent.settings import EdgeSettings
from router_lab.dataset import LabelledPrompt, read_dataset
from shared.messages import GenerateRequest

__all__ = [
    "ASK_CHARS",
    "ASK_TOKENS",
    "CACHE_DIR",
    "CONTEXT_CHARS",
    "CONTEXT_TOKENS",
    "EmbeddingCache",
    "model_embedder",
    "routing_text",
    "table_embedder",
    "token_table",
]

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
ASK_TOKENS = 128
CONTEXT_TOKENS = 24
HIDDEN_TOKENS = 256
LAYER_ROWS = 31
"""Rows per conversation in the ``layers`` cache: the bundled model's 30 blocks, then its
final normed state (``router_lab.layers``)."""


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """``kind`` embeddings of texts, persisted as one ``.npz`` per kind."""

    def __init__(self, kind: str, directory: Path = CACHE_DIR) -> None:
        self.kind = kind
        self.path = directory / f"{kind}.npz"
        self._rows: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as data:
                self._rows = {k: data[k] for k in data.files}
        self._embedder: Any = None

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """The embedding of each text (computing, then saving, the missing ones)."""
        missing = [t for t in dict.fromkeys(texts) if _key(t) not in self._rows]
        for count, text in enumerate(missing, start=1):
            self._rows[_key(text)] = self._embed(text)
            if count % 100 == 0:
                print(f"embed {self.kind}: {count}/{len(missing)}", file=sys.stderr)
                self.save()
        if missing:
            self.save()
        return np.stack([self._rows[_key(t)] for t in texts])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        savez: Any = np.savez  # its stub reads the arrays as its own keyword options
        savez(tmp, **self._rows)
        tmp.replace(self.path)

    def _embed(self, text: str) -> np.ndarray:
        if self._embedder is None:
            embedders: dict[str, Callable[[], Any]] = {
                "model": model_embedder,
                "hidden": hidden_embedder,
                "prompt": prompt_embedder,
                "layers": layers_embedder,
                "prefill_layers": lambda: layers_embedder(prefill=True),
            }
            self._embedder = embedders.get(self.kind, table_embedder)()
        return np.asarray(self._embedder(text), dtype=np.float32)


def _model_path() -> str:
    from inference.models import bundled_model_path

    path = bundled_model_path()
    if path is None:
        raise RuntimeError("the bundled SmolLM2 GGUF is not installed")
    return str(path)


def _embedder(pooling: str, last_tokens: int, n_ctx: int) -> tuple[Any, Any]:
    """The bundled model as an embedder (``pooling``: llama.cpp's ``MEAN`` or ``NONE``),
    and a function that keeps a text's last ``last_tokens`` tokens."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=_model_path(),
        embedding=True,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        n_threads=1,
        pooling_type=getattr(llama_cpp, f"LLAMA_POOLING_TYPE_{pooling}"),
        verbose=False,
    )

    def tail(text: str) -> str:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False) or [llm.token_bos()]
        return llm.detokenize(tokens[-last_tokens:]).decode("utf-8", "ignore") or " "

    return llm, tail


def model_embedder() -> Any:
    llm, tail = _embedder("MEAN", ASK_TOKENS + CONTEXT_TOKENS, n_ctx=512)
    return lambda text: np.asarray(llm.embed(tail(text)))


def hidden_embedder() -> Any:
    llm, tail = _embedder("NONE", HIDDEN_TOKENS, n_ctx=1024)

    def embed(text: str) -> np.ndarray:
        states = np.asarray(llm.embed(tail(text)), dtype=np.float32).reshape(-1, llm.n_embd())
        return np.asarray(states[-1])

    return embed


PROMPT_N_CTX: int = EdgeSettings.model_fields["n_ctx"].default
"""The runner's context for ``prompt`` states: the edge's default ``--n-ctx``."""


def prompt_key(request: GenerateRequest) -> str:
    """The text a ``prompt`` state is cached under: the request's conversation."""
    if request.messages is None:
        return json.dumps({"prompt": request.prompt}, ensure_ascii=False)
    turns = [m.model_dump(exclude_none=True) for m in request.messages]
    return json.dumps({"messages": turns}, ensure_ascii=False, sort_keys=True)


def request_of(key: str) -> GenerateRequest:
    """The request a ``prompt_key`` was made from."""
    return GenerateRequest.model_validate({"request_id": "lab", **json.loads(key)})


def prompt_runner() -> LlamaRunner:
    """The edge's ``LlamaRunner`` on the bundled model, one thread, at the edge's default
    context: what reads ``prompt`` states here and in ``evaluate`` (not loaded yet)."""
    from inference import LlamaRunner, RunnerConfig

    return LlamaRunner(RunnerConfig(Path(_model_path()), n_ctx=PROMPT_N_CTX, n_threads=1))


def prompt_embedder() -> Any:
    """``prompt_runner``'s prompt states, keyed by ``prompt_key``."""
    import asyncio

    from inference import ContextTooLong

    runner = prompt_runner()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.load())

    def embed(key: str) -> np.ndarray:
        try:
            return np.asarray(loop.run_until_complete(runner.prompt_state(request_of(key))))
        except ContextTooLong:
            return np.full(runner.n_embd or 0, np.nan, np.float32)

    return embed


def layers_embedder(*, prefill: bool = False) -> Any:
    """Every block's output and the final state at a conversation's last token, keyed by
    ``prompt_key`` (``router_lab.layers``, which checks its reading first); with
    ``prefill``, read from the prompt's own prefill as the edge's tap reads them
    (``inference.state_tap``)."""
    from router_lab.layers import checked_reader

    reader = checked_reader(prefill=prefill)
    return lambda key: reader.states(key).ravel()


def layer_blocks(kind: str) -> tuple[str, list[int]] | None:
    """The cache and blocks a ``layerN`` (last token decoded alone) or ``prefillN`` (read
    in the prefill) kind reads; ``prefillA,B,C`` reads several, side by side. ``None``
    for any other kind."""
    for prefix, cache in (("layer", "layers"), ("prefill", "prefill_layers")):
        numbers = kind.removeprefix(prefix)
        if numbers != kind and all(n.isdigit() for n in numbers.split(",")):
            return cache, [int(n) for n in numbers.split(",")]
    return None


def token_table() -> tuple[Any, np.ndarray]:
    """The bundled model's tokenizer (vocab-only llama.cpp) and its input embedding table."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from llama_cpp import Llama

    path = _model_path()
    reader = GGUFReader(path)
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    table = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
    tokenizer = Llama(model_path=path, vocab_only=True, verbose=False)
    return tokenizer, table.reshape(-1, table.shape[-1])


def table_embedder() -> Any:
    tokenizer, table = token_table()

    def embed(text: str) -> np.ndarray:
        tokens = tokenizer.tokenize(text.encode("utf-8"), add_bos=False)
        if not tokens:
            return np.zeros(table.shape[1], dtype=np.float32)
        return np.asarray(table[np.asarray(tokens)].mean(axis=0), dtype=np.float32)

    return embed


def embed_items(kind: str, items: Sequence[LabelledPrompt]) -> np.ndarray:
    """Each item's cached ``kind`` embedding (rows in ``items`` order). ``split`` is the
    token table read twice: the focus text's mean (``table.focus_text``) in the first
    block for a short message or the second for a long one (zeros in the other), then
    the routing text's mean; all linear, so it folds as ``table`` does
    (``router_lab.tokenhead``). ``hidden_split``: the same layout of ``hidden`` states."""
    if kind == "prompt":
        return EmbeddingCache(kind).get([prompt_key(i.request) for i in items])
    if (layer := layer_blocks(kind)) is not None:  # blocks' outputs at the last token
        kept, blocks = layer
        rows = EmbeddingCache(kept).get([prompt_key(i.request) for i in items])
        width = rows.shape[1] // LAYER_ROWS
        return np.hstack([rows[:, b * width : (b + 1) * width] for b in blocks])
    if kind not in ("split", "hidden_split"):
        return EmbeddingCache(kind).get([routing_text(i.request) for i in items])
    cache = EmbeddingCache("table" if kind == "split" else "hidden")
    routing = cache.get([routing_text(i.request) for i in items])
    focus = [focus_text(i.request) for i in items]
    means = cache.get([text for text, _ in focus])
    long = np.array([[float(is_long)] for _, is_long in focus], dtype=np.float32)
    return np.hstack([means * (1 - long), means * long, routing])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.embed", description="Fill the embedding cache."
    )
    parser.add_argument("kind", choices=["model", "table", "hidden", "hidden_split", "prompt"])
    parser.add_argument("datasets", type=Path, nargs="+")
    args = parser.parse_args(argv)
    items = [i for path in args.datasets for i in read_dataset(path)]
    vectors = embed_items(args.kind, items)
    print(f"{args.kind}: {vectors.shape[0]} embeddings of {vectors.shape[1]} dimensions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
