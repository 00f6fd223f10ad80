"""``CascadeEngine``: start locally, hold back the first tokens, then keep them or escalate.

For prompts the router scores just under its threshold (``Decision.cascade``). The
verdict (``router.cascade.judge_start``) comes once the probe has every watched token's
confidence or the stream has ended (a short answer is judged on what it has), and is
the stream's first event (``Decided``), before any token: the client's headers say
where the answer really came from. An escalation the cloud cannot take (no link, the
day's budget spent) keeps the local start, with the reason that blocked it: a possibly
weak answer beats none. An escalated start is discarded (see ``router/cascade.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from edge_agent.engines.base import Decided, Engine, EngineEvent
from edge_agent.engines.local import LocalEngine
from edge_agent.errors import GenerationFailed
from edge_agent.router import Decision, Reason, Route
from edge_agent.router.cascade import CascadeConfig, judge_start
from inference import ConfidenceProbe
from shared.messages import GenerateRequest, StreamEnd

__all__ = ["CascadeEngine"]


class CascadeEngine(Engine):
    """One request's cascade: the local start, then the local rest or ``cloud``."""

    served_by = Route.LOCAL

    def __init__(
        self,
        local: LocalEngine,
        cloud: Engine,
        config: CascadeConfig,
        *,
        blocked: Callable[[], Reason | None],
    ) -> None:
        """``cloud`` serves an escalation (with its own fallback); ``blocked()`` says, at
        the moment of the verdict, why the cloud cannot take one (``None``: it can)."""
        self._local = local
        self._cloud = cloud
        self._config = config
        self._blocked = blocked

    @property
    def ready(self) -> bool:
        return self._local.ready

    @property
    def model(self) -> str:
        return self._local.model

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        probe = ConfidenceProbe(self._config.n_tokens)
        async with aclosing(self._local.stream(request, probe=probe)) as local:
            held: list[EngineEvent] = []
            while not probe.full and not (held and isinstance(held[-1], StreamEnd)):
                try:
                    held.append(await anext(local))
                except StopAsyncIteration:
                    raise GenerationFailed("the engine stream ended without a StreamEnd") from None
            reason = judge_start(probe.values, self._config)
            if reason is Reason.LOW_CONFIDENCE:
                reason = self._blocked() or reason
            if reason is not Reason.LOW_CONFIDENCE:
                yield Decided(Decision(Route.LOCAL, reason))
                for event in held:
                    yield event
                async for event in local:
                    yield event
                return
        # Leaving the block closed the local start (its generation is cancelled).
        yield Decided(Decision(Route.CLOUD, reason, fallback=Route.LOCAL))
        async with aclosing(self._cloud.stream(request)) as escalated:
            async for event in escalated:
                yield event
