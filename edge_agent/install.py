"""What ``edge-agent install`` installs (``daemon.install``)."""

from __future__ import annotations

from daemon.spec import InstallSpec
from edge_agent.settings import EdgeSettings

__all__ = ["SPEC"]

SPEC = InstallSpec(
    name="edge",
    program="edge-agent",
    settings=EdgeSettings,
    credentials=("token",),
    takes_model=True,
    next_steps=(
        '# cloud escalation (optional): set signaling = "wss://..." in /etc/tandem/edge.toml;',
        "# put this edge's token in /etc/tandem/edge.token, from:",
        "#   signaling-server token --role edge --peer-id NAME",
    ),
)
