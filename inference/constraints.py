"""Sampling knobs and output constraints as llama.cpp takes them.

``OutputFormat`` becomes a ``LlamaGrammar`` (llama-cpp-python's JSON-schema-to-GBNF
converter, or its stock JSON grammar for ``json_object`` mode): the sampler then only
ever picks tokens that keep the answer a valid prefix of a matching document, so a
constrained answer that ends normally always parses and validates. Converting a schema
costs milliseconds and its grammar is reused (the same schema comes with every call an
agent makes), so grammars are cached by schema text.

``logit_bias`` becomes a logits processor, as ``Llama.create_completion`` builds one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy itself only where logits are read (not at an edge's start-up)
    import numpy as np
    import numpy.typing as npt

    Processor = Callable[[npt.NDArray[np.intc], npt.NDArray[np.single]], npt.NDArray[np.single]]

from inference.errors import InferenceError
from inference.json_grammar import harden, refuse_raw_literals
from shared.messages import OutputFormat, SamplingParams, TokenLogprob

__all__ = ["GRAMMAR_CACHE_SIZE", "grammar_for", "sampler_kwargs", "schema_gbnf", "token_logprob"]

GRAMMAR_CACHE_SIZE = 32
"""Distinct schemas whose grammars are kept."""


def schema_gbnf(schema_text: str) -> str:
    """The GBNF grammar of a JSON schema, its strings held to what JSON allows
    (``json_grammar``)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    refuse_raw_literals(json.loads(schema_text))
    return harden(json_schema_to_gbnf(schema_text))


@lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _grammar(schema_text: str | None) -> Any:
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if schema_text is None:
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        return LlamaGrammar.from_string(schema_gbnf(schema_text), verbose=False)
    except Exception as exc:  # the converter's failures are not a documented set
        raise InferenceError(f"the JSON schema cannot be enforced: {exc}") from exc


def grammar_for(output: OutputFormat | None) -> Any:
    """The grammar enforcing ``output`` (``None`` when unconstrained); ``InferenceError``
    (a 400 at the edge) for a schema the converter cannot turn into a grammar."""
    if output is None:
        return None
    return _grammar(output.schema_text)


def _bias_processor(bias: tuple[tuple[int, float], ...], n_vocab: int) -> Processor:
    import numpy as np

    ids = np.array([t for t, _ in bias], dtype=np.intp)
    values = np.array([b for _, b in bias], dtype=np.single)

    def apply(_: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        scores[ids] += values
        return scores

    if len(ids) and int(ids.max()) >= n_vocab:
        raise InferenceError(f"logit_bias names token {int(ids.max())}; the model has {n_vocab}")
    return apply


def sampler_kwargs(params: SamplingParams, *, n_vocab: int) -> dict[str, Any]:
    """``Llama.generate`` keyword arguments for the knobs ``params`` sets; unset ones
    keep llama-cpp-python's defaults (so a request that sets none samples as before)."""
    kwargs: dict[str, Any] = {}
    for name in ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        value = getattr(params, name)
        if value is not None:
            kwargs[name] = value
    if params.logit_bias:
        from llama_cpp import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList(
            [_bias_processor(params.logit_bias, n_vocab)]
        )
    return kwargs


def token_logprob(llm: Any, logits: npt.NDArray[np.float32], token: int, top: int) -> TokenLogprob:
    """``token``'s log-probability under ``logits`` (the raw model distribution, as
    OpenAI reports it) and the ``top`` most likely tokens'."""
    import numpy as np

    row = logits.astype(np.float64)
    peak = float(row.max())
    log_total = peak + float(np.log(np.exp(row - peak).sum()))

    def piece(t: int) -> str:
        return bytes(llm.detokenize([t])).decode("utf-8", "replace")

    alternatives: tuple[tuple[str, float], ...] = ()
    if top:
        best = np.argpartition(row, -top)[-top:]
        ranked = sorted(best.tolist(), key=lambda t: -row[t])
        alternatives = tuple((piece(t), float(row[t]) - log_total) for t in ranked)
    return TokenLogprob(token=piece(token), logprob=float(row[token]) - log_total, top=alternatives)
