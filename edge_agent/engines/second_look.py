"""``SecondLookEngine``: a request the router left to its second look.

It starts on the local model with the look as the runner's ``PrefillCheck``. The look
runs on the runner's thread once the prompt is evaluated, before any token: if the
blended score stays under the head's threshold the local stream goes on as any other;
otherwise the runner hands the request back (``HandedOn``) and it goes to the cloud
engine (a ``FailoverEngine`` that falls back to the local model, like any ``auto``
escalation). Either way the first event is ``Decided``, so headers, metrics and the log
say what was decided, and why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

import numpy as np
import numpy.typing as npt

from edge_agent.engines.base import Decided, Engine, EngineEvent
from edge_agent.engines.local import LocalEngine
from edge_agent.router import Decision, Reason, Route
from edge_agent.router.second import SecondLook
from inference import HandedOn
from shared.messages import GenerateRequest

__all__ = ["SecondLookEngine"]

log = logging.getLogger(__name__)


class SecondLookEngine(Engine):
    """The local model, unless its reading of the prompt sends the request to ``cloud``."""

    served_by = Route.LOCAL

    def __init__(self, local: LocalEngine, cloud: Engine, look: SecondLook) -> None:
        self._local = local
        self._cloud = cloud
        self._look = look

    @property
    def ready(self) -> bool:
        return self._local.ready

    @property
    def model(self) -> str:
        return self._local.model

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        scores: list[float] = []

        def check(state: npt.NDArray[np.float32]) -> bool:
            p = self._look.score(state)
            scores.append(p)
            return not self._look.escalates(p)

        try:
            async with aclosing(self._local.stream(request, check=check)) as events:
                first = True
                async for event in events:
                    if first:
                        first = False
                        yield Decided(Decision(Route.LOCAL, Reason.SIMPLE, p_cloud=scores[0]))
                    yield event
            return
        except HandedOn:
            pass
        log.debug("request %s: second look %.3f, to the cloud", request.request_id, scores[0])
        cloud = Decision(Route.CLOUD, Reason.SECOND_LOOK, p_cloud=scores[0], fallback=Route.LOCAL)
        yield Decided(cloud)
        async with aclosing(self._cloud.stream(request)) as events:
            async for event in events:
                yield event
