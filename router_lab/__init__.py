"""The router's lab: training, evaluation, the labelled-data reader and the decision
snapshot. Not installed with the runtime (``pyproject.toml`` packages only the processes
and their libraries); run from a checkout, e.g. ``python -m router_lab.train``."""
