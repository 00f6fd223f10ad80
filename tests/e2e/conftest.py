"""The whole stack as users run it: three real processes on loopback, the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import Stack, StackConfig, free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("stack-logs")
    config = StackConfig(
        signaling_port=free_port(),
        worker_port=free_port(),
        edge_port=free_port(),
        log_dir=log_dir,
        log_level="DEBUG",
    )
    stack = Stack(config)
    try:
        stack.start()
    except Exception:
        for log in sorted(log_dir.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    try:
        yield stack
    finally:
        stack.stop()
