"""What operators see from the three real processes: JSON log lines (one per edge
request, one per worker stream), no secrets in any log at DEBUG, and every metric the
shipped alert rules use really exported.

One stack: signaling (with TURN through a real coturn, so that TURN credentials are
minted and handed out), a worker and an edge with an API key, all logging JSON at DEBUG
(``TANDEM_LOG_FORMAT`` in the environment: the env setting of all three).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from devstack.stack import Stack
from signaling.settings import SignalingSettings
from tests.e2e.conftest import running_stack
from tests.support.coturn import Coturn, coturn_on_loopback, needs_coturn
from tests.support.wait import eventually

pytestmark = [needs_coturn, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "tandem.json"
API_KEY = "observability-key-" + "q" * 24
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MARKER = "OCELOT-PROMPT-8842"
"""In every prompt sent: it must never reach a log."""
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass
class Observed:
    stack: Stack
    turn: Coturn
    log_dir: Path
    started: float


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def observed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Observed]:
    work = tmp_path_factory.mktemp("observability")
    async with coturn_on_loopback(work) as turn:
        env = {
            "TANDEM_LOG_FORMAT": "json",
            "TANDEM_TURN_URL": f"turn:127.0.0.1:{turn.port}?transport=udp",
            "TANDEM_TURN_SECRET": turn.secret,
        }
        with patched_env(env):
            started = time.time()
            with running_stack(work / "logs", edge_args=["--api-key", API_KEY]) as stack:
                yield Observed(stack, turn, work / "logs", started)


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the processes the stack spawns; restore after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def log_entries(log_dir: Path, name: str) -> list[dict[str, Any]]:
    """Every line of one process's log, each parsed as JSON (a line that is not fails)."""
    entries = []
    for number, line in enumerate((log_dir / f"{name}.log").read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{name}.log line {number} is not JSON: {line[:200]!r}") from None
        assert isinstance(entry, dict)
        assert {"ts", "level", "logger", "msg"} <= set(entry), line
        entries.append(entry)
    return entries


async def chat(
    http: aiohttp.ClientSession, stack: Stack, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, str]:
    async with http.post(
        f"{stack.edge_url}/v1/chat/completions", json=body, headers=headers
    ) as resp:
        await resp.read()
        paths[resp.headers["X-Request-Id"]] = resp.headers.get("X-Tandem-Path")
        return resp.status, resp.headers["X-Request-Id"]


paths: dict[str, str | None] = {}
"""X-Tandem-Path of each response, by request id."""


def body(model: str, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Name a colour. {MARKER}"}],
        "max_tokens": 6,
        "temperature": 0,
        "stream": stream,
    }


async def test_json_logs_one_line_per_request_and_stream_and_no_secrets(
    observed: Observed,
) -> None:
    stack = observed.stack
    async with aiohttp.ClientSession() as http:
        local = await chat(http, stack, body("edge"), AUTH)
        cloud = await chat(http, stack, body("cloud", stream=True), AUTH)
        bad = await chat(http, stack, {"model": "edge", "messages": MARKER}, AUTH)
        unauthorized = await chat(
            http, stack, body("edge"), {"Authorization": "Bearer not-the-key-" + "z" * 20}
        )
    assert [s for s, _ in (local, cloud, bad, unauthorized)] == [200, 200, 400, 401]

    def access(request_id: str) -> dict[str, Any]:
        lines = [
            e
            for e in log_entries(observed.log_dir, "edge")
            if e["logger"] == "edge_agent.access" and e.get("request_id") == request_id
        ]
        assert len(lines) == 1, f"one line for {request_id}, got {lines}"
        return lines[0]

    # The line is written once the response is complete: wait for the last one.
    await eventually(
        lambda: any(
            e.get("request_id") == unauthorized[1] for e in log_entries(observed.log_dir, "edge")
        ),
        what="the edge's access line for the last request",
    )
    local_line, cloud_line = access(local[1]), access(cloud[1])
    assert local_line["level"] == "INFO"
    assert (local_line["route"], local_line["reason"], local_line["served_by"]) == (
        "local",
        "forced-local",
        "local",
    )
    assert local_line["status"] == 200 and local_line["completion_tokens"] > 0
    assert local_line["ttft_ms"] > 0 and local_line["total_ms"] >= local_line["ttft_ms"]
    # With TURN offered, ICE may settle on a relayed pair: whichever, the line says
    # what the client was told.
    assert (cloud_line["served_by"], cloud_line["status"]) == ("cloud", 200)
    assert cloud_line["path"] == paths[cloud[1]]
    assert cloud_line["path"] in ("direct", "turn-udp", "turn-tcp", "relay", "unknown")
    assert cloud_line["prompt_tokens"] > 0 and cloud_line["completion_tokens"] > 0
    assert access(bad[1])["status"] == 400
    assert access(unauthorized[1])["status"] == 401

    # The worker logs the same request's stream once, under the same id.
    async def worker_line() -> dict[str, Any] | None:
        lines = [
            e
            for e in log_entries(observed.log_dir, "worker")
            if e["logger"] == "cloud_worker.streams" and cloud[1] in e["request_id"]
        ]
        return lines[0] if len(lines) == 1 else None

    stream = await eventually(worker_line, what="the worker's stream line")
    assert stream["result"] == "completed" and stream["edge"] == "edge-1"
    assert stream["prompt_tokens"] > 0 and stream["completion_tokens"] > 0

    # No secret and no prompt anywhere, in any of the three logs, at DEBUG.
    text = "\n".join(
        (observed.log_dir / f"{n}.log").read_text() for n in ("edge", "worker", "signaling")
    )
    assert any(
        e["level"] == "DEBUG"
        for n in ("edge", "worker", "signaling")
        for e in log_entries(observed.log_dir, n)
    ), "DEBUG lines were written"
    forbidden = [API_KEY, "not-the-key-", MARKER, stack.secret, observed.turn.secret, "Bearer "]
    forbidden += turn_passwords(observed, ("edge-1", "worker-1"))
    leaked = [secret[:12] + "…" for secret in forbidden if secret in text]
    assert not leaked, f"secrets in the logs: {leaked}"
    assert not JWT.search(text), "a signed token (JWT) appears in the logs"


def turn_passwords(observed: Observed, peer_ids: tuple[str, ...]) -> list[str]:
    """Every TURN password signaling may have minted for these peers during the run:
    ``base64(HMAC-SHA1(secret, "<expiry>:<peer>"))`` for each second of the run."""
    ttl = SignalingSettings.model_fields["turn_ttl_s"].default
    passwords = []
    for second in range(int(observed.started) - 1, int(time.time()) + 1):
        for peer in peer_ids:
            username = f"{second + ttl}:{peer}"
            digest = hmac.new(observed.turn.secret.encode(), username.encode(), hashlib.sha1)
            passwords.append(base64.b64encode(digest.digest()).decode())
    return passwords


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics page can carry, from its ``# TYPE`` lines (a family
    with no samples yet still counts: its series appear once something happens)."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split()
        names.add(name)
        if kind == "counter":
            names |= {name if name.endswith("_total") else name + "_total", name + "_created"}
        elif kind in ("histogram", "summary"):
            names |= {name + "_bucket", name + "_sum", name + "_count", name + "_created"}
    return names


def scrape(url: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(resp.read().decode())


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return {name for expr in exprs for name in re.findall(r"\btandem_[a-z0-9_]+", expr)}


def rule_metric_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    names: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"\btandem_[a-z0-9_]+", rule["expr"]))
    return names


async def test_every_metric_in_the_rules_and_dashboard_is_exported(observed: Observed) -> None:
    stack = observed.stack
    signaling = stack.signaling_url.replace("ws://", "http://").replace("/v1/signal", "/metrics")
    worker = stack.worker_health_url.replace("/healthz", "/metrics")
    exported = (
        exported_names(scrape(f"{stack.edge_url}/metrics", AUTH))
        | exported_names(scrape(worker))
        | exported_names(scrape(signaling))
    )
    used = rule_metric_names()
    assert len(used) >= 8, used
    missing = sorted(used - exported)
    assert not missing, f"rules.yml uses metrics no process exports: {missing}"
    charted = dashboard_metric_names()
    assert len(charted) >= 8, charted
    missing = sorted(charted - exported)
    assert not missing, f"the Grafana dashboard charts metrics no process exports: {missing}"
