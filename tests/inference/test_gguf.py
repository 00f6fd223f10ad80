"""``read_gguf``: on the bundled model (checked against llama.cpp's own reading) and on
small files written here, byte by byte, to the GGUF layout."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from inference import ModelLoadError
from inference.gguf import GgufArray, read_gguf
from inference.model_file import ModelFile, human_count
from tests.support.model import model_path


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf(version: int = 3, *, truncate: int = 0) -> bytes:
    kvs = [
        _string("general.architecture") + struct.pack("<I", 8) + _string("toy"),
        _string("toy.context_length") + struct.pack("<I", 4) + struct.pack("<I", 4096),
        _string("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", 15),
        _string("toy.rope.scale") + struct.pack("<I", 6) + struct.pack("<f", 0.5),
        _string("toy.flag") + struct.pack("<I", 7) + struct.pack("<?", True),
        _string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 3)
        + _string("<s>")
        + _string("</s>")
        + _string("hi"),
        _string("tokenizer.ggml.eos_token_id") + struct.pack("<I", 4) + struct.pack("<I", 1),
        _string("toy.ints") + struct.pack("<IIQ", 9, 5, 2) + struct.pack("<ii", -1, 2),
    ]
    tensors = [
        _string("a") + struct.pack("<I", 2) + struct.pack("<QQ", 3, 4) + struct.pack("<IQ", 0, 0),
        _string("b") + struct.pack("<I", 1) + struct.pack("<Q", 5) + struct.pack("<IQ", 0, 48),
    ]
    data = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    data += b"".join(kvs) + b"".join(tensors)
    return data[: len(data) - truncate] if truncate else data


def test_reads_a_written_file(tmp_path: Path) -> None:
    path = tmp_path / "toy.gguf"
    path.write_bytes(_gguf())
    header = read_gguf(path, keep_arrays={"tokenizer.ggml.tokens"})
    assert header.version == 3 and header.tensor_count == 2
    assert header.parameter_count == 3 * 4 + 5
    assert header.architecture == "toy" and header.arch_int("context_length") == 4096
    assert header.quantization == "Q4_K_M"
    assert header.metadata["toy.rope.scale"] == 0.5 and header.metadata["toy.flag"] is True
    assert header.metadata["toy.ints"] == GgufArray(2)  # not kept: length only
    assert header.token_text(1) == "</s>" and header.token_text(7) is None
    facts = ModelFile(path).facts()
    assert facts.stop_words == ("</s>",) and facts.family == "toy"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + bytes(20), "not a GGUF file"),
        (_gguf(version=1), "version 1"),
        (_gguf(truncate=5), "truncated"),
    ],
)
def test_refuses_what_is_not_a_readable_gguf(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=message):
        read_gguf(path)


def test_agrees_with_llama_cpp_on_the_bundled_model() -> None:
    import llama_cpp

    path = model_path()
    header = read_gguf(path)
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        theirs = llm.metadata
        n_params = llama_cpp.llama_model_n_params(llm._model.model)
    finally:
        llm.close()
    assert header.parameter_count == n_params
    for key, text in theirs.items():
        ours = header.metadata[key]
        if isinstance(ours, bool):
            assert text == str(ours).lower()
        elif isinstance(ours, float):
            assert float(text) == pytest.approx(ours)
        else:
            assert str(ours) == text, key
    assert header.quantization == "Q4_1"  # the file's name says so
    assert human_count(header.parameter_count) == "134.52M"
