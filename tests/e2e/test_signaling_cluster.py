"""Two signaling instances on one real Redis act as one, as users run them: the edge on
instance A, the worker on instance B, the real model answering through them; then A is
killed (SIGKILL, no goodbye) and the edge re-registers on B and is served again.

Run twice: over WebRTC (signaling only introduces the peers) and with ``--force-relay``
(every frame crosses both instances through Redis, so losing A breaks the path and the
edge must rebuild it through B).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from devstack.stack import Stack, StackConfig, free_port
from tests.support.redis import RedisServer, unique_prefix
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


class ClusterStack(Stack):
    """The devstack with two signaling instances sharing ``redis_url``."""

    def __init__(self, config: StackConfig, redis_url: str) -> None:
        super().__init__(config)
        self.redis_url = redis_url
        self.prefix = unique_prefix()
        self.ports = {"a": config.signaling_port, "b": free_port()}
        self._worker_starting = False
        self.relayed = False

    def url_of(self, name: str) -> str:
        return f"ws://{self.config.host}:{self.ports[name]}/v1/signal"

    @property
    def signaling_url(self) -> str:
        """The URLs peers are given: the edge knows A first, the worker B first."""
        order = ("b", "a") if self._worker_starting else ("a", "b")
        return ",".join(self.url_of(name) for name in order)

    def start_worker(
        self, name: str, peer_id: str, port: int, extra_args: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._worker_starting = True
        try:
            return super().start_worker(name, peer_id, port, extra_args)
        finally:
            self._worker_starting = False

    def start_signaling(self) -> None:
        for name, port in self.ports.items():
            args = ["--host", self.config.host, "--port", str(port)]
            args += ["--redis-url", self.redis_url, "--redis-prefix", self.prefix]
            args += ["--redis-presence-ttl-s", "2"]
            self._spawn(f"signaling-{name}", "signaling", args, {"TANDEM_SECRET": self.secret})
        for name in self.ports:
            self.wait_healthy(self.health_of(name), f"signaling-{name}")

    def health_of(self, name: str) -> str:
        return f"http://{self.config.host}:{self.ports[name]}/healthz"


def _health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _start(log_dir: Path, redis: RedisServer, edge_args: list[str]) -> ClusterStack:
    config = StackConfig(
        signaling_port=free_port(),
        worker_port=free_port(),
        edge_port=free_port(),
        log_dir=log_dir,
        log_level="DEBUG",
        edge_args=["--reconnect-max-s", "1", *edge_args],
        worker_args=["--reconnect-max-s", "1"],
    )
    stack = ClusterStack(config, redis.url)
    try:
        stack.start()
    except Exception:
        for log in sorted(log_dir.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    return stack


@pytest.fixture(params=["webrtc", "relay"])
def cluster_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[ClusterStack]:
    edge_args = ["--force-relay"] if request.param == "relay" else []
    stack = _start(tmp_path_factory.mktemp(f"cluster-{request.param}"), redis_server, edge_args)
    stack.relayed = request.param == "relay"
    try:
        yield stack
    finally:
        stack.stop()
        for log in sorted(stack.config.log_dir.glob("*.log")) if stack.config.log_dir else []:
            if "Traceback" in log.read_text(errors="replace"):
                print(f"----- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


async def _ask_cloud(stack: Stack) -> str:
    sdk = AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="cloud",
        messages=[{"role": "user", "content": "Name three fruits."}],
        max_tokens=12,
        temperature=0,
    )
    assert raw.headers["x-tandem-served-by"] == "cloud"
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    assert text.strip()
    return raw.headers["x-tandem-path"]


async def test_served_across_instances_and_after_losing_one(cluster_stack: ClusterStack) -> None:
    stack = cluster_stack
    a, b = _health(stack.health_of("a")), _health(stack.health_of("b"))
    assert (a["edges"], a["workers"]) == (1, 0), a  # the edge on A
    assert (b["edges"], b["workers"]) == (0, 1), b  # the worker on B
    first_path = await _ask_cloud(stack)
    assert (first_path == "relay") is stack.relayed, first_path

    stack.procs["signaling-a"].kill()  # no close frames, no presence cleanup
    stack.procs["signaling-a"].wait()

    await eventually(
        lambda: _health(stack.health_of("b"))["edges"] == 1,
        timeout_s=60,
        what="the edge re-registered on B",
    )
    await eventually(
        lambda: _health(f"{stack.edge_url}/healthz").get("cloud") == "ready",
        timeout_s=60,
        what="the edge's cloud link ready again",
    )
    assert await _ask_cloud(stack) == first_path
