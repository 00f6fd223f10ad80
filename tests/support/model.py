"""The bundled SmolLM2 GGUF, which every model-backed test runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import bundled_model_path


def model_path() -> Path:
    path = bundled_model_path()
    if path is None:  # the test command installs the 'bundled' extra: this is a setup error
        pytest.fail("the bundled model is missing: install the project with the 'bundled' extra")
    return path
