"""The whole stack as users run it: three real processes on loopback, the real model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.stack import Stack, StackConfig, free_port
from tests.support.redis import redis_server

__all__ = ["redis_server", "running_stack", "stack"]  # redis_server: a session fixture


@contextmanager
def running_stack(
    log_dir: Path,
    *,
    edge_args: list[str] | None = None,
    worker_args: list[str] | None = None,
    wait_for_cloud: bool = True,
) -> Iterator[Stack]:
    """Start the three programs on free ports; print their logs if start-up fails."""
    config = StackConfig(
        signaling_port=free_port(),
        worker_port=free_port(),
        edge_port=free_port(),
        log_dir=log_dir,
        log_level="DEBUG",
        edge_args=edge_args or [],
        worker_args=worker_args or [],
    )
    stack = Stack(config)
    try:
        stack.start(wait_for_cloud=wait_for_cloud)
    except Exception:
        for log in sorted(log_dir.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack-logs")) as stack:
        yield stack
