"""Every layer's hidden state at the prompt's last token, read during the prefill.

llama.cpp hands out only the final (normed) hidden state (``inference.prompt_state``).
Its scheduler can also call a function on each tensor of the graph as it is computed
(``llama_context_params.cb_eval``); the residual stream after block ``i`` is the tensor
named ``l_out-i``. This module asks for those and keeps the last token's row of each,
so the lab can measure what a middle layer would buy the second look (docs/router.md,
round 8) before anything pays for it at run time.

It is lab only: a Python callback runs for every node of every decode once installed,
taking the GIL each time, so the edge reads its one tensor with a callback in C
(``inference.state_tap``) instead. Both read a raw ``ggml_tensor *`` through the same
ctypes mirror (``state_tap.TensorMirror``), which ``capture_check`` checks here by
comparing the last layer with the runner's own state.

``python -m router_lab.layers data/*.jsonl`` fills ``router_lab/.cache/layers.npz``: per
conversation (``embed.prompt_key``), ``LAYER_ROWS`` rows (each block's output, then the
final state) flattened; ``embed_items("layerN", ...)`` reads block N's row.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.state_tap import TensorMirror
from router_lab.dataset import read_dataset
from router_lab.embed import LAYER_ROWS, EmbeddingCache, prompt_key, prompt_runner, request_of

if TYPE_CHECKING:
    from inference import LlamaRunner

__all__ = ["CHECK_KEY", "LayerReader", "capture_check", "checked_reader"]


_F32 = 0  # GGML_TYPE_F32


class LayerReader:
    """A loaded runner whose context reports ``l_out-i`` (and the final ``result_norm``).

    ``prefill``: read the states as the edge's tap does (``inference.state_tap``), from
    the prompt's own prefill (its batches of ``n_batch`` tokens), rather than with the
    last token decoded alone."""

    def __init__(self, runner: LlamaRunner, *, prefill: bool = False) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self.runner = runner
        self.prefill = prefill
        llm = runner._llm
        self.n_layer = int(llama_cpp.llama_model_n_layer(llm._model.model))
        self._wanted = {f"l_out-{i}".encode(): i for i in range(self.n_layer)}
        self._wanted[b"result_norm"] = self.n_layer
        self._rows: dict[int, np.ndarray] = {}
        self._callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_tensor)
        llm.context_params.cb_eval = self._callback
        llm._ctx = _internals.LlamaContext(
            model=llm._model, params=llm.context_params, verbose=False
        )
        runner._tap = None  # its tap was on the context just replaced: the runner decodes

    def _on_tensor(self, pointer: int, ask: bool, _user: Any) -> bool:
        tensor = ctypes.cast(pointer, ctypes.POINTER(TensorMirror)).contents
        index = self._wanted.get(tensor.name)
        if index is None:
            return not ask  # not wanted: asked, decline; told, carry on
        if ask:
            return True
        if tensor.type != _F32:
            raise RuntimeError(f"{tensor.name!r} is not f32; the ggml_tensor mirror is stale")
        width, count = tensor.ne[0], tensor.ne[1]
        last = tensor.data + (count - 1) * tensor.nb[1]
        self._rows[index] = np.ctypeslib.as_array(
            (ctypes.c_float * width).from_address(last)
        ).copy()
        return True

    def states(self, key: str) -> np.ndarray:
        """``n_layer + 1`` rows for the conversation ``key`` (``embed.prompt_key``): each
        block's output at the last token, then the final normed state; NaN past the
        context."""
        tokens = self.runner._prompt_tokens(request_of(key))
        llm = self.runner._llm
        if len(tokens) >= self.runner.config.n_ctx:
            return np.full((self.n_layer + 1, llm.n_embd()), np.nan, np.float32)
        llm.reset()
        if self.prefill:  # each batch overwrites the rows: the last one holds the last token
            llm.eval(tokens)
        else:
            llm.eval(tokens[:-1])  # the last token decoded alone
            self._rows.clear()
            llm.eval(tokens[-1:])
        return np.stack([self._rows[i] for i in range(self.n_layer + 1)])


def capture_check(reader: LayerReader, key: str) -> float:
    """The largest difference between the captured final state and the one the runner
    reads itself (``LlamaRunner.prompt_state``): 0 when the mirror reads what it should."""
    captured = reader.states(key)[-1]
    own = asyncio.run(reader.runner.prompt_state(request_of(key)))
    return float(np.abs(captured - np.asarray(own)).max())


CHECK_KEY = json.dumps(
    {"messages": [{"content": "How many legs does a spider have?", "role": "user"}]}
)


def checked_reader(*, prefill: bool = False) -> LayerReader:
    """The bundled model's reader, once its final state matches the runner's own (read
    apart, then as asked)."""
    runner = prompt_runner()
    asyncio.run(runner.load())
    reader = LayerReader(runner)
    if (gap := capture_check(reader, CHECK_KEY)) > 1e-4:
        raise RuntimeError(f"the captured state differs from the runner's by {gap}")
    reader.prefill = prefill
    return reader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.layers",
        description="Cache every layer's last-token hidden state of each labelled prompt "
        "(then: python -m router_lab.second --state layerN).",
    )
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument(
        "--prefill",
        action="store_true",
        help="read the states from the prompt's own prefill, as the edge's tap does "
        "(cache 'prefill_layers'; then: --state prefillN)",
    )
    args = parser.parse_args(argv)
    items = [i for path in args.datasets for i in read_dataset(path)]
    cache = EmbeddingCache("prefill_layers" if args.prefill else "layers")
    rows = cache.get([prompt_key(i.request) for i in items])
    print(f"layers: {rows.shape[0]} prompts, {LAYER_ROWS} rows of {rows.shape[1] // LAYER_ROWS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
