"""``make run``'s launcher: the three programs come up, and Ctrl-C ends them cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from devstack.stack import Stack, StackConfig, free_port

pytestmark = pytest.mark.e2e


def test_ctrl_c_stops_all_three_cleanly(tmp_path: Path) -> None:
    config = StackConfig(
        signaling_port=free_port(), worker_port=free_port(), edge_port=free_port(), log_dir=tmp_path
    )
    stack = Stack(config)
    try:
        stack.start()
        for proc in stack.procs.values():  # what a terminal's Ctrl-C does to the group
            proc.send_signal(signal.SIGINT)
        codes = {name: proc.wait(timeout=20) for name, proc in stack.procs.items()}
    finally:
        stack.stop()
    assert codes == {"signaling": 0, "worker": 0, "edge": 0}, {
        name: (tmp_path / f"{name}.log").read_text()[-2000:] for name in codes
    }
