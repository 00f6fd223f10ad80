"""``LocalEngine``: the edge's own small model, via ``inference.LlamaRunner``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

from edge_agent.engines.base import Engine, EngineEvent
from edge_agent.errors import (
    ContextTooLong,
    GenerationFailed,
    ModelNotLoaded,
    Overloaded,
    RequestInvalid,
)
from edge_agent.router import Route
from inference import ContextTooLong as InferenceContextTooLong
from inference import (
    HandedOn,
    InferenceError,
    LlamaRunner,
    ModelLoadError,
    PrefillCheck,
    RunnerOverloaded,
)
from shared.messages import GenerateRequest

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Serves requests on this device; maps inference errors to edge errors."""

    served_by = Route.LOCAL

    def __init__(self, runner: LlamaRunner) -> None:
        self._runner = runner

    @property
    def ready(self) -> bool:
        return self._runner.ready

    @property
    def model(self) -> str:
        return self._runner.name

    @property
    def model_path(self) -> Path:
        """The GGUF file the local model is loaded from."""
        return self._runner.config.model_path

    @property
    def n_ctx(self) -> int:
        return self._runner.n_ctx

    @property
    def generated_tokens(self) -> int:
        """Tokens the local model generated so far, cancelled streams' included."""
        return self._runner.generated_tokens

    @property
    def busy(self) -> int:
        """Requests generating or queued locally (the router's overload signal)."""
        return self._runner.busy

    def tokenize(self, text: str) -> list[int] | None:
        """``text``'s token ids in the local vocabulary; ``None`` before the model loads."""
        return self._runner.tokenize(text)

    def read_state_from(self, tensor: str) -> bool:
        """Whether the prompt state a check sees can be ``tensor``'s (and now is)."""
        return self._runner.read_state_from(tensor)

    async def load(self) -> None:
        """Load the model (seconds); ``ready`` turns true when done."""
        try:
            await self._runner.load()
        except ModelLoadError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"could not load {self._runner.config.model_path}: {exc}") from exc

    async def stream(
        self, request: GenerateRequest, *, check: PrefillCheck | None = None
    ) -> AsyncGenerator[EngineEvent, None]:
        """``Engine.stream``; with ``check``, the runner's ``PrefillCheck`` (a false
        answer raises ``inference.HandedOn``, not a failure: the caller serves elsewhere)."""
        try:
            async with aclosing(self._runner.stream(request, check=check)) as events:
                async for event in events:
                    yield event
        except HandedOn:
            raise
        except ModelLoadError as exc:
            raise ModelNotLoaded(str(exc)) from exc
        except RunnerOverloaded as exc:
            raise Overloaded(str(exc), retry_after_s=2) from exc
        except InferenceContextTooLong as exc:
            raise ContextTooLong(str(exc)) from exc
        except InferenceError as exc:
            raise RequestInvalid(str(exc)) from exc
        except RuntimeError as exc:  # llama.cpp decode failures surface as RuntimeError
            raise GenerationFailed(f"local generation failed: {exc}") from exc

    async def aclose(self) -> None:
        """Stop generating and free the model; the app calls it once, at shutdown."""
        await self._runner.aclose()
