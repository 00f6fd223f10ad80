"""Resolving which GGUF to load."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import bundled_model_path, model_name, resolve_model


def test_no_path_means_the_bundled_model() -> None:
    bundled = bundled_model_path()
    assert bundled is not None and bundled.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolve_model(None) == bundled
    assert bundled.stat().st_size > 50_000_000  # the real weights, not a pointer file


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model file not found"):
        resolve_model(tmp_path / "nope.gguf")


def test_an_existing_file_is_used_as_given(tmp_path: Path) -> None:
    model = tmp_path / "Mine.Q4_K_M.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_model(model) == model
    assert model_name(model) == "Mine.Q4_K_M"
