"""One log line per stream a worker served: who asked, how it ended, tokens and timings.

The edge logs one line per HTTP request with its ``request_id``; the worker's line for
the same request carries the same id, so an operator can follow a request across the
two machines. Like the edge's line it never carries the prompt or the generated text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from shared.logs import log_event
from shared.messages import StreamEnd, TokenChunk

__all__ = ["StreamStats"]

log = logging.getLogger("cloud_worker.streams")


@dataclass
class StreamStats:
    """What is known about one stream so far; logged once, when it ends."""

    request_id: str
    edge: str
    path: str
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int = 0

    def observe(self, event: object) -> None:
        """Account one event the backend produced (before it is sent)."""
        if isinstance(event, TokenChunk) and event.n_tokens > 0:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.completion_tokens += event.n_tokens
        elif isinstance(event, StreamEnd):
            self.prompt_tokens = event.prompt_tokens
            self.completion_tokens = max(self.completion_tokens, event.completion_tokens)

    def log(self, result: str) -> None:
        """The stream's line: ``result`` is the worker metric's label (completed, ...)."""
        ttft = self.first_token_at - self.started if self.first_token_at is not None else None
        log_event(
            log,
            logging.WARNING if result == "failed" else logging.INFO,
            "stream",
            request_id=self.request_id,
            edge=self.edge,
            path=self.path,
            result=result,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            ttft_ms=None if ttft is None else round(ttft * 1000, 1),
            total_ms=round((time.monotonic() - self.started) * 1000, 1),
        )
