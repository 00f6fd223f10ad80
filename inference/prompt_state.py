"""The prompt's last hidden state, read from the prefill a local answer does anyway.

A causal model's final (normed) hidden state at the prompt's last position is what it
has understood of the whole conversation just before it answers. The edge's router
reads it for a second look at prompts it was not sure of (``edge_agent.router.second``):
the prefill is work a local answer needs anyway, so the look costs nothing when the
answer stays local and one prefill when it escalates.

llama.cpp returns hidden states only for tokens marked as outputs, and a context with
embeddings on marks every token of a batch (computing their logits over the whole
vocabulary too); so all but the last token are evaluated with embeddings off, and the
last one with them on: one extra decode, about 15 ms for a 500-token prompt here.
Where the runner has a ``StateTap`` (``inference.state_tap``, a C eval callback), the
state is instead read during the prefill itself, for nothing. Either way
``Llama.generate`` then finds the whole prompt evaluated and samples from the last
token's logits directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from inference.kvcache import common_prefix

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from inference.state_tap import StateTap

__all__ = ["PrefillCheck", "prefill_state"]


class PrefillCheck(Protocol):
    """Asked once per request, after the prefill and before any token is sent."""

    def __call__(self, state: npt.NDArray[np.float32]) -> bool:
        """True: answer here; False: hand the request on (``inference.HandedOn``)."""


def prefill_state(
    llm: Any, tokens: list[int], tap: StateTap | None = None
) -> npt.NDArray[np.float32]:
    """Evaluate ``tokens`` in ``llm`` (reusing whatever prefix its context holds) and
    return a copy of the hidden state at the last one: the ``tap``'s tensor, else the
    final state."""
    import llama_cpp
    import numpy as np

    prefix = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens[:-1])
    llm.n_tokens = prefix
    if tap is not None:  # the last token at least is evaluated: it carries the state
        return tap.read(llm, tokens[prefix:])
    if prefix < len(tokens) - 1:
        llm.eval(tokens[prefix:-1])
    ctx = llm._ctx.ctx
    llama_cpp.llama_set_embeddings(ctx, True)
    try:
        llm.eval(tokens[-1:])
        row = llama_cpp.llama_get_embeddings_ith(ctx, -1)
        if not row:
            raise RuntimeError("llama.cpp returned no hidden state for the prompt")
        return np.ctypeslib.as_array(row, shape=(llm.n_embd(),)).astype(np.float32)
    finally:
        llama_cpp.llama_set_embeddings(ctx, False)
