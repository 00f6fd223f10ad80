"""Reading a GGUF file's header: its metadata and parameter count, without the weights.

The probes clients send before they use a model (Ollama's ``/api/show`` and ``/api/tags``,
llama-server's ``/props``) want facts that live in the file: architecture, context
length, quantization, parameter count, chat template, the end-of-turn tokens. llama-cpp-
python exposes the metadata only as strings, drops arrays, and needs a model load; this
reads the header directly (a few milliseconds, plus one pass over the vocabulary when
the end tokens' text is wanted), with typed values, so the answers can be given before
the model is loaded and for files that are never loaded.

Format: little-endian; magic ``GGUF``, version (2 or 3: version 1 used 32-bit counts
and is refused), tensor count, metadata count, the metadata key/value pairs, then one
entry per tensor (name, dimensions, type, offset). Only the header is read.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from inference.errors import ModelLoadError

__all__ = ["FILE_TYPES", "GgufArray", "GgufHeader", "GgufValue", "read_gguf"]

_MAGIC = b"GGUF"
_STRING = 8
_ARRAY = 9
_SCALARS: Mapping[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_MAX_STRING_BYTES = 64 << 20
"""A string longer than this is a corrupt header, not a chat template."""
_MAX_DIMS = 8

FILE_TYPES: Mapping[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}
"""``general.file_type`` (llama.cpp's ``llama_ftype``, an ABI-stable enum) -> the name
quantizers and Ollama use (``Q4_1``, ``Q4_K_M``)."""


@dataclass(frozen=True)
class GgufArray:
    """An array value: its length, and its items when they were asked for."""

    length: int
    items: tuple[GgufValue, ...] | None = None


GgufValue = int | float | bool | str | GgufArray


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF file says about itself."""

    version: int
    metadata: Mapping[str, GgufValue]
    parameter_count: int
    """Sum over tensors of their element counts: the model's parameter count."""
    tensor_count: int

    def get_int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def get_str(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    @property
    def architecture(self) -> str:
        return self.get_str("general.architecture") or ""

    def arch_int(self, name: str) -> int | None:
        """``<architecture>.<name>``, e.g. ``llama.context_length``."""
        return self.get_int(f"{self.architecture}.{name}")

    @property
    def quantization(self) -> str:
        """``Q4_1`` and the like; ``""`` when the file does not say."""
        file_type = self.get_int("general.file_type")
        if file_type is None:
            return ""
        return FILE_TYPES.get(file_type, f"ftype-{file_type}")

    def token_text(self, token_id: int) -> str | None:
        """The vocabulary entry ``token_id``, if the tokens were read (``keep_arrays``)."""
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, GgufArray) or tokens.items is None:
            return None
        if not 0 <= token_id < len(tokens.items):
            return None
        text = tokens.items[token_id]
        return text if isinstance(text, str) else None


class _Reader:
    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file = file
        self._path = path

    def _bytes(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) != n:
            raise ModelLoadError(f"{self._path}: the GGUF header is truncated")
        return data

    def unpack(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self._bytes(struct.calcsize(fmt)))[0]
        return value

    def u32(self) -> int:
        return int(self.unpack("<I"))

    def u64(self) -> int:
        return int(self.unpack("<Q"))

    def string(self) -> str:
        n = self.u64()
        if n > _MAX_STRING_BYTES:
            raise ModelLoadError(f"{self._path}: a GGUF string of {n} bytes: corrupt header")
        return self._bytes(n).decode("utf-8", "replace")

    def skip_string(self) -> None:
        n = self.u64()
        if n > _MAX_STRING_BYTES:
            raise ModelLoadError(f"{self._path}: a GGUF string of {n} bytes: corrupt header")
        self._file.seek(n, 1)

    def value(self, kind: int, *, keep: bool) -> GgufValue:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            return self.array(keep=keep)
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise ModelLoadError(f"{self._path}: unknown GGUF value type {kind}")
        return self.unpack(fmt)

    def array(self, *, keep: bool) -> GgufArray:
        kind = self.u32()
        length = self.u64()
        if keep:
            return GgufArray(length, tuple(self.value(kind, keep=False) for _ in range(length)))
        if kind == _STRING:
            for _ in range(length):
                self.skip_string()
        elif kind == _ARRAY:
            for _ in range(length):
                self.array(keep=False)
        else:
            fmt = _SCALARS.get(kind)
            if fmt is None:
                raise ModelLoadError(f"{self._path}: unknown GGUF array type {kind}")
            self._file.seek(struct.calcsize(fmt) * length, 1)
        return GgufArray(length)


def read_gguf(path: Path, *, keep_arrays: Collection[str] = ()) -> GgufHeader:
    """The header of the GGUF at ``path``; arrays' items are kept only for the keys in
    ``keep_arrays`` (a vocabulary is tens of thousands of strings). Raises
    ``ModelLoadError`` for a file that is missing or not GGUF."""
    try:
        with path.open("rb", buffering=1 << 20) as file:
            reader = _Reader(file, path)
            if file.read(4) != _MAGIC:
                raise ModelLoadError(f"{path} is not a GGUF file")
            version = reader.u32()
            if version < 2:
                raise ModelLoadError(f"{path}: GGUF version {version} is not supported")
            tensor_count = reader.u64()
            kv_count = reader.u64()
            metadata: dict[str, GgufValue] = {}
            for _ in range(kv_count):
                key = reader.string()
                kind = reader.u32()
                metadata[key] = reader.value(kind, keep=key in keep_arrays)
            parameters = 0
            for _ in range(tensor_count):
                reader.skip_string()
                n_dims = reader.u32()
                if n_dims > _MAX_DIMS:
                    raise ModelLoadError(f"{path}: a tensor of {n_dims} dimensions")
                parameters += math.prod(reader.u64() for _ in range(n_dims))
                reader.u32()  # element type
                reader.u64()  # offset in the data section
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    return GgufHeader(version, metadata, parameters, tensor_count)
