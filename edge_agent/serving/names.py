"""Model names a client may use, and the route each one asks for.

Both wire dialects (OpenAI, Ollama) resolve names here, so the rules live once: ``auto``
(or no name) lets the router choose, ``edge`` or the local file's name forces the local
model, ``cloud`` or the workers' model name forces the cloud, and the
``X-Tandem-Route`` header overrides any of them. An unknown name is refused even with
the header: a typo should not quietly be served by something else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from edge_agent.errors import ModelNotFound, RequestInvalid
from edge_agent.router import RequestedRoute

__all__ = ["AUTO_MODEL", "CLOUD_MODEL", "EDGE_MODEL", "ROUTE_HEADER", "ModelNames"]

AUTO_MODEL = "auto"
"""Model name meaning "let the router choose" (as does an empty or missing one)."""
EDGE_MODEL = "edge"
"""Model name forcing the local model, whatever its file is called."""
CLOUD_MODEL = "cloud"
"""Model name forcing the cloud model."""
ROUTE_HEADER = "X-Tandem-Route"
"""Request header overriding the model name's route (``local``, ``cloud``, ``auto``)."""

_ROUTES: Mapping[str, RequestedRoute] = MappingProxyType(
    {"auto": "auto", "local": "local", "cloud": "cloud"}
)


class ModelNames:
    """The names this agent answers to; the cloud's is read live (workers change)."""

    def __init__(
        self,
        *,
        local_model: str,
        cloud_model: Callable[[], str] | None,
        default_route: RequestedRoute,
    ) -> None:
        """``cloud_model`` is ``None`` for an agent without a cloud."""
        self._local = local_model
        self._cloud = cloud_model
        self._default = default_route

    def ids(self) -> list[str]:
        """Every model name a request may use, as listed by ``/v1/models``."""
        ids = [AUTO_MODEL, EDGE_MODEL]
        if self._cloud is not None:
            ids.append(CLOUD_MODEL)
        if self._local not in ids:
            ids.append(self._local)
        return ids

    def known(self, model: str) -> bool:
        """Whether ``model`` names something this agent serves: one of ``ids()`` or the
        workers' model name (``cloud`` only with a cloud)."""
        return model in self.ids() or (self._cloud is not None and model == self._cloud())

    def requested_route(self, model: str | None, header: str | None) -> RequestedRoute:
        """The route a request asks for: ``model``'s, unless ``X-Tandem-Route`` overrides."""
        route = self._route_for_model((model or "").strip())
        if header is None:
            return route
        override = _ROUTES.get(header.strip().lower())
        if override is None:
            raise RequestInvalid(f"{ROUTE_HEADER} must be one of: local, cloud, auto.")
        return override

    def _route_for_model(self, model: str) -> RequestedRoute:
        if model in ("", AUTO_MODEL):
            return self._default
        if model in (EDGE_MODEL, self._local):
            return "local"
        if model == CLOUD_MODEL or (self._cloud is not None and model == self._cloud()):
            return "cloud"
        raise ModelNotFound(model)
