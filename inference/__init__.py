"""Running a GGUF model with llama-cpp-python off the event loop.

Both the edge (its small local model) and the cloud worker (the full model) need the
same thing: one llama context on its own thread, tokens streamed back into asyncio,
cancellation per token. This library holds it once; it is not a process and imports
none of them (import-linter keeps it so).
"""

from inference.confidence import ConfidenceProbe, TokenConfidence
from inference.errors import (
    ContextTooLong,
    HandedOn,
    InferenceError,
    ModelLoadError,
    RunnerOverloaded,
)
from inference.llama import LlamaRunner, RunnerConfig
from inference.models import BUNDLED_MODEL_FILE, bundled_model_path, model_name, resolve_model
from inference.prompt_state import PrefillCheck

__all__ = [
    "BUNDLED_MODEL_FILE",
    "ConfidenceProbe",
    "ContextTooLong",
    "HandedOn",
    "InferenceError",
    "LlamaRunner",
    "ModelLoadError",
    "PrefillCheck",
    "RunnerConfig",
    "RunnerOverloaded",
    "TokenConfidence",
    "bundled_model_path",
    "model_name",
    "resolve_model",
]
