"""``LlamaRunner``: one llama.cpp context on its own thread, streamed into asyncio.

A llama context serves one generation at a time and its calls block for the length of
a forward pass, so the runner owns a single-thread executor. Requests wait for it on a
semaphore with a bounded number of waiters (``RunnerOverloaded`` past that) and tokens
come back through a ``Handoff``: at most ``max_queued_chunks`` chunks wait for the
reader, then the thread waits for it (a slow reader slows generation; nothing is
dropped), and the reader merges what is waiting into one chunk. Cancelling the reader
cancels the hand-off, which the thread checks before each token and which wakes it if
it waits, so a client that goes away frees the model within one token.

The runner does its own detokenisation and stop-string handling (instead of
``create_completion``) because that gives exact completion-token counts, never emits
text that a stop string later retracts, and leaves room to read token probabilities.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy itself comes with llama_cpp, imported by ``load``
    import numpy as np
    import numpy.typing as npt

from inference.confidence import ConfidenceProbe, token_confidence
from inference.constraints import grammar_for, sampler_kwargs, token_logprob
from inference.errors import (
    ContextTooLong,
    HandedOn,
    InferenceError,
    ModelLoadError,
    RunnerOverloaded,
)
from inference.handoff import Handoff
from inference.kvcache import KvCache
from inference.models import model_name
from inference.prompt_state import PrefillCheck, prefill_state
from inference.state_tap import FINAL_STATE, StateTap, tap_available
from inference.stops import StopScanner
from shared.messages import GenerateRequest, StreamEnd, TokenChunk, TokenLogprob

__all__ = ["LlamaRunner", "RunnerConfig"]

log = logging.getLogger(__name__)

Event = TokenChunk | StreamEnd
_Item = Event | BaseException


@dataclass(frozen=True)
class RunnerConfig:
    """How to load and serve one GGUF model."""

    model_path: Path
    n_ctx: int = 2048
    n_threads: int | None = None
    n_gpu_layers: int = 0
    max_waiting: int = 8
    """Requests allowed to wait while one generates; more raise ``RunnerOverloaded``."""
    max_queued_chunks: int = 64
    """Token chunks allowed to wait for a slow reader; then the generating thread waits."""
    kv_cache_bytes: int = 0
    """Keep recent conversations' KV cells up to this many bytes (``KvCache``); 0: off."""
    state_tap: bool = True
    """Read the prompt state a ``PrefillCheck`` sees during the prefill itself, by a C
    eval callback (``inference.state_tap``), where it was built and the model runs on
    the CPU; otherwise by one extra decode of the last token."""

    def __post_init__(self) -> None:
        if self.max_queued_chunks < 1:
            raise ValueError("max_queued_chunks must be at least 1")
        if self.kv_cache_bytes < 0:
            raise ValueError("kv_cache_bytes must not be negative")


class LlamaRunner:
    """Serves generations from one model, one at a time, off the event loop."""

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self.name = model_name(config.model_path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{self.name}")
        self._llm: Any = None
        self._chat_format: Any = None
        self._slot = asyncio.Semaphore(1)
        self._waiting = 0
        self._active: set[Handoff[_Item]] = set()
        self._closed = False
        self._kv = KvCache(config.kv_cache_bytes) if config.kv_cache_bytes else None
        self._tap: StateTap | None = None
        self.generated_tokens = 0
        """Tokens generated since load, for any request, finished or cancelled: what the
        model really did (a cancelled stream's tokens reach no ``StreamEnd``)."""

    @property
    def ready(self) -> bool:
        """True once the model is loaded and until ``aclose``."""
        return self._llm is not None and not self._closed

    @property
    def busy(self) -> int:
        """Requests generating or waiting to."""
        return self._waiting + (1 if self._slot.locked() else 0)

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    @property
    def n_embd(self) -> int | None:
        """The width of the model's hidden state (``prompt_state``); ``None`` before load."""
        llm = self._llm
        return None if llm is None else int(llm.n_embd())

    @property
    def kv_restored_tokens(self) -> int:
        """Prompt tokens taken from kept KV cells instead of evaluated (0 with it off)."""
        return self._kv.restored_tokens if self._kv is not None else 0

    @property
    def backlog(self) -> int:
        """Chunks the generating thread has made that its reader has not taken yet."""
        return sum(h.backlog for h in list(self._active))

    @property
    def stalled(self) -> bool:
        """The generating thread waits for a slow reader (``max_queued_chunks`` waiting)."""
        return any(h.stalled for h in list(self._active))

    def tokenize(self, text: str) -> list[int] | None:
        """``text``'s token ids in the model's vocabulary (no BOS, specials as text), or
        ``None`` before the model is loaded. Reads only the vocabulary, so it is safe
        beside a generation on the runner's thread; the router's token-embedding head
        reads these (``edge_agent.router.table``)."""
        llm = self._llm
        if llm is None or self._closed:
            return None
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False))

    async def load(self) -> None:
        """Load the model on the runner's thread (seconds for a big GGUF)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        # libgomp spins idle OpenMP threads by default. On a small device where other
        # work holds a core, llama.cpp's barriers then crawl: an 11-token prompt took
        # 7.6 s instead of 0.14 s on 2 cores with one busy. Waiting passively costs
        # little when the machine is idle. It must be set before libgomp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = self.config.model_path
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        log.info(
            "loading model %s (n_ctx=%d, n_gpu_layers=%d)",
            path,
            self.config.n_ctx,
            self.config.n_gpu_layers,
        )
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads,
                n_gpu_layers=self.config.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {path}: {exc}") from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            special = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
            bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
            self._chat_format = Jinja2ChatFormatter(
                template=template, eos_token=special, bos_token=bos
            )
        self._tap = self._install_tap(llm)
        self._llm = llm
        log.info("model %s loaded", self.name)

    def _install_tap(self, llm: Any) -> StateTap | None:
        if not self.config.state_tap or self.config.n_gpu_layers:
            return None  # offloaded tensors are not the host's to read
        if not tap_available():
            log.warning(
                "inference._tap was not built (no C compiler at install): the router's "
                "second look reads the prompt state with one extra decode"
            )
            return None
        tap = StateTap(llm, FINAL_STATE)
        if (problem := tap.self_check(llm)) is not None:
            # unarmed, the callback reads nothing: leaving it installed is harmless
            log.warning("the state tap is off (%s): the second look decodes once more", problem)
            return None
        return tap

    def read_state_from(self, tensor: str) -> bool:
        """Have ``PrefillCheck``s see ``tensor``'s last row (``l_out-N``: block N's output;
        ``result_norm``: the final state; several joined by commas: their rows side by
        side). False where it cannot be read: without the tap only the final state can;
        with it, up to ``state_tap.TAP_MAX`` tensors. Call it before any check runs (the
        router does, when it attaches its head)."""
        if self._tap is not None:
            try:
                self._tap.retarget(tensor)
            except ValueError as exc:
                log.warning("the state tap cannot read %r: %s", tensor, exc)
                return False
            return True
        return tensor == FINAL_STATE

    @property
    def state_read(self) -> str:
        """How a ``PrefillCheck``'s state is read: ``tap`` (in the prefill) or ``decode``."""
        return "tap" if self._tap is not None else "decode"

    async def stream(
        self,
        request: GenerateRequest,
        *,
        probe: ConfidenceProbe | None = None,
        check: PrefillCheck | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Generate for ``request``: zero or more ``TokenChunk`` then one ``StreamEnd``.

        ``probe``, if given, receives the confidence of the first ``probe.n_tokens``
        generated tokens, each before the chunk that carries it is yielded. ``check``, if
        given, is called on the runner's thread with the prompt's last hidden state once
        the prompt is evaluated (``prompt_state``); if it returns false, nothing is
        generated and the stream raises ``HandedOn``. Raises ``ModelLoadError`` before the
        model is loaded, ``RunnerOverloaded`` when the wait queue is full,
        ``ContextTooLong`` if the prompt does not fit.
        """
        if not self.ready:
            raise ModelLoadError("the model is still loading")
        if self._slot.locked() and self._waiting >= self.config.max_waiting:
            raise RunnerOverloaded(f"{self._waiting} requests already waiting for the local model")
        self._waiting += 1
        try:
            await self._slot.acquire()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        handoff: Handoff[_Item] = Handoff(loop, self.config.max_queued_chunks)
        self._active.add(handoff)

        def done(_: object) -> None:
            self._active.discard(handoff)
            self._slot.release()

        try:
            future = loop.run_in_executor(
                self._executor, self._generate, request, handoff, probe, check
            )
        except BaseException:
            done(None)
            raise
        future.add_done_callback(done)
        held: _Item | None = None
        try:
            while True:
                item = held if held is not None else await handoff.get()
                held = None
                if isinstance(item, BaseException):
                    raise item
                # Coalesce what is already waiting: a slow consumer gets fewer, larger chunks.
                while isinstance(item, TokenChunk) and not handoff.empty():
                    nxt = handoff.get_nowait()
                    if not isinstance(nxt, TokenChunk):
                        held = nxt
                        break
                    item = TokenChunk(
                        request_id=item.request_id,
                        text=item.text + nxt.text,
                        n_tokens=item.n_tokens + nxt.n_tokens,
                        logprobs=item.logprobs + nxt.logprobs,
                    )
                yield item
                if isinstance(item, StreamEnd):
                    return
        finally:
            handoff.cancel()

    def _prompt_tokens(self, request: GenerateRequest) -> list[int]:
        """The tokens the model reads for ``request``; never none."""
        llm = self._llm
        if request.messages is not None:
            if self._chat_format is None:
                raise InferenceError(
                    f"model {self.name} has no chat template; use the completions endpoint"
                )
            rendered = self._chat_format(messages=[m.model_dump() for m in request.messages])
            tokens: list[int] = llm.tokenize(
                rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
        else:
            assert request.prompt is not None
            tokens = list(llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True))
        if request.continuation:  # resume a stream another engine started: model text, no specials
            tokens += llm.tokenize(
                request.continuation.encode("utf-8"), add_bos=False, special=False
            )
        if not tokens:  # "" or "\x04" with a tokenizer that adds no BOS: llama.cpp asserts
            raise InferenceError("the prompt has no tokens for this model")
        return tokens

    def _generate(
        self,
        request: GenerateRequest,
        handoff: Handoff[_Item],
        probe: ConfidenceProbe | None,
        check: PrefillCheck | None,
    ) -> None:
        try:
            finished = self._generate_unsafe(request, handoff, probe, check)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            handoff.put_final(exc)
            return
        if not finished or handoff.dropped:
            # Cancelled: by the consumer (who no longer reads) or by ``aclose`` (who
            # must not leave a reader waiting forever).
            handoff.put_final(ModelLoadError("the model was unloaded while generating"))

    def _generate_unsafe(
        self,
        request: GenerateRequest,
        handoff: Handoff[_Item],
        probe: ConfidenceProbe | None,
        check: PrefillCheck | None,
    ) -> bool:
        """Generate, handing events over; False if cancelled before the end."""
        import llama_cpp

        emit = handoff.put
        if handoff.cancelled:
            return False
        llm = self._llm
        params = request.params
        tokens = self._prompt_tokens(request)
        n_ctx = self.config.n_ctx
        if params.num_ctx is not None:
            if params.num_ctx > n_ctx:
                raise InferenceError(
                    f"num_ctx {params.num_ctx} is more than model {self.name}'s context "
                    f"window here ({n_ctx} tokens)"
                )
            n_ctx = params.num_ctx
        room = n_ctx - len(tokens)
        if room <= 0:
            raise ContextTooLong(len(tokens), n_ctx)
        if request.output is not None and request.continuation:
            # The grammar would start over at the resumed position: the answer would be
            # two documents run together. Refuse rather than return JSON that won't parse.
            raise InferenceError("a constrained (JSON) answer cannot be resumed mid-way")
        knobs = sampler_kwargs(params, n_vocab=llm.n_vocab())
        grammar = grammar_for(request.output)
        max_tokens = min(params.max_tokens or room, room)
        if params.seed is not None:
            llm.set_seed(params.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rid = request.request_id
        scanner = StopScanner(params.stop)
        scored: list[TokenLogprob] = []  # tokens' logprobs not yet sent, when asked for
        unsent = 0
        generated = 0
        eog = False
        if self._kv is not None:  # another conversation's turn may sit in the context
            self._kv.restore(llm, tokens)
        if check is not None and not check(prefill_state(llm, tokens, self._tap)):
            raise HandedOn(f"request {rid}: handed on after the prompt's prefill")
        for token in llm.generate(
            tokens,
            temp=params.temperature,
            top_p=params.top_p,
            reset=True,
            grammar=grammar,
            **knobs,
        ):
            if handoff.cancelled:
                return False
            if probe is not None and probe.wants():
                probe.values.append(token_confidence(self._last_logits(), token))
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                eog = True
                break
            generated += 1
            self.generated_tokens += 1  # one writer: the runner's only thread
            unsent += 1
            if params.logprobs is not None:
                scored.append(token_logprob(llm, self._last_logits(), token, params.logprobs))
            text = scanner.feed(decoder.decode(llm.detokenize([token])))
            if text:
                emit(TokenChunk(request_id=rid, text=text, n_tokens=unsent, logprobs=tuple(scored)))
                unsent = 0
                scored = []
            if scanner.stopped or generated >= max_tokens:
                break
        if self._kv is not None:
            self._kv.save(llm)
        text = scanner.finish(decoder.decode(b"", final=True))
        if text or unsent:  # chunks' n_tokens always add up to completion_tokens
            emit(TokenChunk(request_id=rid, text=text, n_tokens=unsent, logprobs=tuple(scored)))
        stopped = eog or scanner.stopped
        emit(
            StreamEnd(
                request_id=rid,
                finish_reason="stop" if stopped else "length",
                prompt_tokens=len(tokens),
                completion_tokens=generated,
            )
        )
        return True

    async def prompt_state(self, request: GenerateRequest) -> npt.NDArray[np.float32]:
        """The hidden state a ``check`` would see for ``request``, without generating
        (the router's lab fits its second look on these)."""
        if not self.ready:
            raise ModelLoadError("the model is still loading")
        async with self._slot:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._prompt_state, request)

    def _prompt_state(self, request: GenerateRequest) -> npt.NDArray[np.float32]:
        tokens = self._prompt_tokens(request)
        if len(tokens) >= self.config.n_ctx:
            raise ContextTooLong(len(tokens), self.config.n_ctx)
        return prefill_state(self._llm, tokens, self._tap)

    def _last_logits(self) -> npt.NDArray[np.float32]:
        """The logits the last token was sampled from, read in place (no copy): the
        context keeps the last position's row until the next decode."""
        import llama_cpp
        import numpy as np

        llm = self._llm
        row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))

    async def aclose(self) -> None:
        """Stop generations, wait for the thread, free the model. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for handoff in list(self._active):
            handoff.cancel()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._executor.shutdown, True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
