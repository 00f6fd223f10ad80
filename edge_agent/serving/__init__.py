"""The serving pipeline: from a parsed request to a stream of events, routed once.

``api/`` parses and renders; this package decides and serves (``pipeline.py``), names
the models a client may ask for (``names.py``), reports who served (``report.py``) and
keeps the day's cloud budget (``budget.py``) on an injected clock (``clock.py``).
"""

from edge_agent.engines.base import Failover
from edge_agent.serving.budget import CloudBudget
from edge_agent.serving.clock import SYSTEM_CLOCK, Clock, SystemClock
from edge_agent.serving.names import AUTO_MODEL, CLOUD_MODEL, EDGE_MODEL, ROUTE_HEADER, ModelNames
from edge_agent.serving.pipeline import Served, ServedEvent, ServingLimits, ServingPipeline
from edge_agent.serving.report import ServingReport

__all__ = [
    "AUTO_MODEL",
    "CLOUD_MODEL",
    "EDGE_MODEL",
    "ROUTE_HEADER",
    "SYSTEM_CLOCK",
    "Clock",
    "CloudBudget",
    "Failover",
    "ModelNames",
    "Served",
    "ServedEvent",
    "ServingLimits",
    "ServingPipeline",
    "ServingReport",
    "SystemClock",
]
