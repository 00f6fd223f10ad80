"""The prompt's hidden state, read during its own prefill by a C eval callback.

llama.cpp hands out hidden states only for tokens marked as outputs, and a context with
embeddings on marks every token of a batch; so reading the state at the prompt's last
token through its public API costs one extra single-token decode
(``inference.prompt_state``: about 15 ms for a 500-token prompt on one core here). Its
scheduler can also call a function on each tensor of the graph as it is computed
(``llama_context_params.cb_eval``). ``StateTap`` installs one, written in C
(``inference/_tap.c``: a Python one would take the GIL at every node of every decode),
that copies the last row of a few named tensors while armed: ``result_norm``, the final
normed state the runner would read anyway, or ``l_out-N``, block N's output. Several
are named joined by commas (``l_out-12,l_out-20,l_out-28``) and read as their rows
side by side. The prefill a local answer does anyway then carries the look for nothing.

The callback knows ``struct ggml_tensor`` only through the byte offsets of the ctypes
mirror below (the ggml headers llama-cpp-python 0.3 ships: ``GGML_MAX_DIMS`` 4,
``GGML_MAX_SRC`` 10, names of 64 bytes). A llama.cpp that changes the struct would
break it, which the tap refuses to hide: it checks the tensor's type, width and row
stride on every read, and ``tests/inference/test_state_tap.py`` compares its reading
with the runner's own state.

``inference._tap`` is an optional part of the build (``setup.py``). Without a C compiler
there is no tap and the look falls back to the extra decode (final state only).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FINAL_STATE",
    "TAP_MAX",
    "StateTap",
    "TapError",
    "TensorMirror",
    "tap_available",
    "tensor_names",
]

log = logging.getLogger(__name__)

FINAL_STATE = "result_norm"
"""llama.cpp's name for the final normed hidden state (the output rows only)."""


_NAME_BYTES = 64  # GGML_MAX_NAME, with its NUL
TAP_MAX = 4
"""The most tensors one tap reads (``TAP_MAX`` in inference/_tap.c)."""


class TapError(RuntimeError):
    """The tap read nothing, or a tensor not shaped as the mirror expects."""


class TensorMirror(ctypes.Structure):
    """``struct ggml_tensor`` (ggml.h), up to the name."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * _NAME_BYTES),
    ]


class _TapState(ctypes.Structure):
    """``struct tandem_tap`` (inference/_tap.c): keep the two in step."""

    _fields_ = [
        ("names", (ctypes.c_char * _NAME_BYTES) * TAP_MAX),
        ("count", ctypes.c_int64),
        ("armed", ctypes.c_int64),
        ("captured", ctypes.c_int64),
        ("error", ctypes.c_int64),
        ("width", ctypes.c_int64),
        ("off_type", ctypes.c_int64),
        ("off_ne", ctypes.c_int64),
        ("off_nb", ctypes.c_int64),
        ("off_data", ctypes.c_int64),
        ("off_name", ctypes.c_int64),
        ("dest", ctypes.POINTER(ctypes.c_float)),
    ]


_ERRORS = {1: "is not f32", 2: "is not n_embd wide", 3: "has rows that are not contiguous"}


def _library() -> ctypes.CDLL | None:
    # a shared library built as an extension module (no Python header, no PyInit)
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (path := here / f"_tap{suffix}").is_file():
            return ctypes.CDLL(str(path))
    return None


def tap_available() -> bool:
    """Whether the C callback was built (``setup.py``; it needs a C compiler)."""
    return _library() is not None


def tensor_names(tensor: str) -> list[str]:
    """The tensors a ``tensor`` spec names: one name, or several joined by commas."""
    names = tensor.split(",")
    if not 0 < len(names) <= TAP_MAX or len(set(names)) != len(names):
        raise ValueError(f"not 1 to {TAP_MAX} distinct tensor names: {tensor!r}")
    for name in names:
        if not 0 < len(name.encode()) < _NAME_BYTES:
            raise ValueError(f"not a tensor name: {name!r}")
    return names


class StateTap:
    """The last row of a few named tensors (``tensor_names``), read by a C eval callback
    on a llama-cpp-python ``Llama`` while armed, side by side; the context is recreated
    with the callback installed."""

    def __init__(self, llm: Any, tensor: str = FINAL_STATE) -> None:
        import llama_cpp
        from llama_cpp import _internals

        library = _library()
        if library is None:
            raise TapError("inference._tap is not built (it needs a C compiler at install)")
        self.width = int(llm.n_embd())
        self._rows = np.zeros(TAP_MAX * self.width, dtype=np.float32)
        self._state = _TapState(
            width=self.width,
            off_type=TensorMirror.type.offset,
            off_ne=TensorMirror.ne.offset,
            off_nb=TensorMirror.nb.offset,
            off_data=TensorMirror.data.offset,
            off_name=TensorMirror.name.offset,
            dest=self._rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
        )
        # the function pointer and the state must outlive the context: held on self
        address = ctypes.cast(library.tandem_tap_eval, ctypes.c_void_p).value
        if address is None:
            raise TapError("inference._tap has no tandem_tap_eval")
        self._callback = llama_cpp.ggml_backend_sched_eval_callback(address)
        llm.context_params.cb_eval = self._callback
        llm.context_params.cb_eval_user_data = ctypes.cast(
            ctypes.pointer(self._state), ctypes.c_void_p
        )
        old = llm._ctx
        llm._ctx = _internals.LlamaContext(
            model=llm._model, params=llm.context_params, verbose=False
        )
        old.close()
        llm._stack.callback(llm._ctx.close)  # freed before the model is (last in, first out)
        llm.n_tokens = 0  # the new context holds nothing yet
        self.tensor = FINAL_STATE
        self.retarget(tensor)

    def retarget(self, tensor: str) -> None:
        """Read ``tensor`` (one name, or several joined by commas) from the next prefill
        on (between reads: not while one runs)."""
        names = tensor_names(tensor)
        for i in range(TAP_MAX):
            self._state.names[i].value = names[i].encode() if i < len(names) else b""
        self._state.count = len(names)
        self.tensor = tensor

    def read(self, llm: Any, tokens: list[int]) -> npt.NDArray[np.float32]:
        """Evaluate ``tokens`` in ``llm`` (at least the last one) with the tap armed, and
        return a copy of the tensors' rows at the last, side by side."""
        self._state.captured = 0
        self._state.error = 0
        self._state.armed = 1
        try:
            llm.eval(tokens)
        finally:
            self._state.armed = 0
        if self._state.error:
            problem = _ERRORS.get(self._state.error, "is not what the ggml_tensor mirror expects")
            raise TapError(f"llama.cpp's {self.tensor!r} {problem}; the mirror is stale")
        count = self._state.count
        if self._state.captured != (1 << count) - 1:
            names = tensor_names(self.tensor)
            missing = [n for i, n in enumerate(names) if not self._state.captured >> i & 1]
            raise TapError(f"llama.cpp computed no tensor named {', '.join(missing)}")
        return self._rows[: count * self.width].copy()

    def self_check(self, llm: Any) -> str | None:
        """Why this tap cannot be trusted with ``llm`` (``None``: it can): its final state
        for a short prompt against the one the extra decode reads. A llama.cpp whose
        ``ggml_tensor`` moved under the mirror fails here, at load, rather than in a
        request. Leaves ``llm``'s context empty and the tap on the final state."""
        from inference.prompt_state import prefill_state

        tensor = self.tensor
        self.retarget(FINAL_STATE)
        tokens = llm.tokenize(b"Which state does the router read?", add_bos=True)
        try:
            llm.n_tokens = 0
            tapped = self.read(llm, tokens)
            llm.n_tokens = 0
            decoded = prefill_state(llm, tokens)
        except TapError as exc:
            return str(exc)
        finally:
            llm.n_tokens = 0
            self.retarget(tensor)
        gap = float(np.abs(tapped - decoded).max())
        if not gap <= 1e-3 * float(np.abs(decoded).max()):
            return f"its final state differs from the decoded one by {gap:g}"
        return None
