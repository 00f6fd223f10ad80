"""``KvCache``: recent conversations' KV cells, so a conversation that comes back skips
re-reading its history.

llama.cpp already reuses the longest prefix shared with the *previous* request. With two
or more users (or apps) taking turns, the previous request is someone else's, and every
turn processes the whole history again: turn 6 of four interleaved conversations took
4.7x as long to its first token as with state kept (``python -m bench.multiturn``).

After a generation the context's cells for sequence 0 are copied out
(``llama_state_seq_get_data``: the KV cells only, about 23 KB a token for the bundled
model; not llama-cpp-python's ``save_state``, which also copies every evaluated token's
logits, tens of MB) under the tokens they hold. Before the next one, the entry sharing
the longest prefix with the new prompt is copied back if it beats what the context
already holds; ``Llama.generate`` then evaluates only the rest. Entries are evicted
least recently used past ``budget_bytes``; an entry that is a prefix of a newer one is
dropped (the newer one serves it). Used only from the runner's thread.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

__all__ = ["KvCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class KvCache:
    """Saved KV cells of sequence 0, keyed by the tokens they hold."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise ValueError("budget_bytes must be positive")
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.used_bytes = 0
        self.restored_tokens = 0
        """Prompt tokens taken from saved cells instead of evaluated, since start."""

    def __len__(self) -> int:
        return len(self._entries)

    def restore(self, llm: Any, tokens: Sequence[int]) -> int:
        """Put the best saved cells for ``tokens`` into ``llm``'s context if they beat
        what it holds; the number of leading prompt tokens now already evaluated."""
        import llama_cpp

        held = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        best_key: tuple[int, ...] | None = None
        best = held
        for key in self._entries:
            n = common_prefix(key, tokens)
            if n > best:
                best_key, best = key, n
        if best_key is None:
            return held
        data = self._entries[best_key]
        self._entries.move_to_end(best_key)
        llm._ctx.kv_cache_clear()
        llm.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0) == 0:
            llm._ctx.kv_cache_clear()  # nothing usable: generate evaluates everything
            return 0
        llm.input_ids[: len(best_key)] = best_key
        llm.n_tokens = len(best_key)
        self.restored_tokens += best - held
        return best

    def save(self, llm: Any) -> None:
        """Copy ``llm``'s cells for sequence 0 out, under the tokens they hold."""
        import llama_cpp

        n = int(llm.n_tokens)
        if n == 0:
            return
        ctx = llm._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        if size == 0 or size > self.budget_bytes:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0))
        if written == 0:
            return
        key = tuple(int(t) for t in llm.input_ids[:n])
        for old in [k for k in self._entries if len(k) <= n and key[: len(k)] == k]:
            self.used_bytes -= len(self._entries.pop(old))
        data = bytes(buffer[:written])
        self._entries[key] = data
        self.used_bytes += len(data)
        while self.used_bytes > self.budget_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self.used_bytes -= len(evicted)
