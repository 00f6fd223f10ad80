"""What ``cloud-worker install`` installs (``daemon.install``)."""

from __future__ import annotations

from cloud_worker.settings import WorkerSettings
from daemon.spec import InstallSpec

__all__ = ["SPEC"]

SPEC = InstallSpec(
    name="worker",
    program="cloud-worker",
    settings=WorkerSettings,
    credentials=("token",),
    takes_model=True,
    next_steps=(
        '# set signaling = "wss://..." (and n_gpu_layers) in /etc/tandem/worker.toml;',
        "# put this worker's token in /etc/tandem/worker.token, from:",
        "#   signaling-server token --role worker --peer-id NAME",
    ),
)
