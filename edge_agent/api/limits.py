"""Bounds on request fields that the body's schema cannot know: they are settings.

The schema (``openai_models``, ``ollama_compat``) bounds what is fixed by the protocol;
what an operator tunes is checked here, before the fields become a wire
``GenerateRequest``, so that a refusal is a 400 naming the field, never a 500 from the
protocol's own bounds (``shared.messages.MAX_STOPS`` and ``MAX_STOP_CHARS``, which the
settings may not exceed). The rest of the request's size, whatever field it is in, is
checked once it is built, by the serving pipeline (``--max-prompt-tokens``, and the
link's message limit: 413).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.errors import RequestInvalid
from edge_agent.settings import EdgeSettings

__all__ = ["BodyLimits"]


@dataclass(frozen=True)
class BodyLimits:
    """``--max-stop-sequences`` and ``--max-stop-chars``."""

    max_stop_sequences: int = 16
    max_stop_chars: int = 256

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> BodyLimits:
        return cls(
            max_stop_sequences=settings.max_stop_sequences,
            max_stop_chars=settings.max_stop_chars,
        )

    def check_stop(self, stop: str | list[str] | None, *, param: str) -> None:
        """Refuse a stop list that is too long or holds too long a string. A huge stop
        list costs the model a scan per token, and is text the prompt limit must count."""
        if isinstance(stop, list) and len(stop) > self.max_stop_sequences:
            raise RequestInvalid(
                f"{param}: at most {self.max_stop_sequences} stop sequences are accepted "
                f"(got {len(stop)}; --max-stop-sequences).",
                param=param,
            )
        stops = [stop] if isinstance(stop, str) else (stop or [])
        for i, text in enumerate(stops):
            if len(text) > self.max_stop_chars:
                where = f"{param}[{i}]" if isinstance(stop, list) else param
                raise RequestInvalid(
                    f"{where}: a stop sequence may be at most {self.max_stop_chars} characters "
                    f"long (got {len(text)}; --max-stop-chars).",
                    param=where,
                )
