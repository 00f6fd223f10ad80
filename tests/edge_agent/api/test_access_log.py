"""One access-log line per request, with the route, reason, path, tokens and timings,
for local and cloud requests and for errors; never the prompt or the key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from shared.logs import FIELDS_ATTR
from tests.edge_agent.api.harness import Agent
from tests.edge_agent.api.status_support import (
    API_KEY,
    AUTH,
    PROMPT_MARKER,
    agent_with_cloud,
    chat,
    post_chat,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent() -> AsyncIterator[Agent]:
    async with agent_with_cloud() as running:
        yield running


def lines_for(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "edge_agent.access" and getattr(r, FIELDS_ATTR)["request_id"] == request_id
    ]


def fields_of(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    (record,) = lines_for(caplog, request_id)  # exactly one line per request
    assert record.levelno == logging.INFO
    fields: dict[str, Any] = getattr(record, FIELDS_ATTR)
    return fields


async def test_a_local_request_logs_one_line(
    agent: Agent, http: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, rid = await post_chat(http, agent, chat("edge"))
    assert status == 200
    fields = fields_of(caplog, rid)
    assert fields["endpoint"] == "/v1/chat/completions" and fields["method"] == "POST"
    assert fields["status"] == 200
    assert (fields["route"], fields["reason"], fields["served_by"]) == (
        "local",
        "forced-local",
        "local",
    )
    assert fields["path"] is None and fields["failovers"] == 0
    assert fields["prompt_tokens"] > 0 and 0 < fields["completion_tokens"] <= 8
    assert 0 < fields["ttft_ms"] <= fields["total_ms"]
    assert PROMPT_MARKER not in caplog.text and API_KEY not in caplog.text


async def test_a_streamed_cloud_request_logs_one_line_when_the_stream_ends(
    agent: Agent, http: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, rid = await post_chat(http, agent, chat("cloud", stream=True))
    assert status == 200
    fields = fields_of(caplog, rid)
    assert (fields["route"], fields["reason"], fields["served_by"]) == (
        "cloud",
        "forced-cloud",
        "cloud",
    )
    assert fields["path"] == "direct"
    assert fields["prompt_tokens"] > 0 and 0 < fields["completion_tokens"] <= 8
    assert fields["ttft_ms"] is not None
    assert PROMPT_MARKER not in caplog.text and API_KEY not in caplog.text


async def test_client_errors_log_one_line_with_their_status(
    agent: Agent, http: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = {"model": "edge", "messages": "not a list", "note": PROMPT_MARKER}
    async with http.post(f"{agent.v1}/chat/completions", json=bad, headers=AUTH) as resp:
        assert resp.status == 400
        bad_id = resp.headers["X-Request-Id"]
    wrong_key = {"Authorization": "Bearer wrong-key-" + "w" * 30}
    async with http.post(
        f"{agent.v1}/chat/completions", json=chat("edge"), headers=wrong_key
    ) as resp:
        assert resp.status == 401
        unauthorized_id = resp.headers["X-Request-Id"]
    bad_fields = fields_of(caplog, bad_id)
    assert bad_fields["status"] == 400 and bad_fields["route"] is None
    assert bad_fields["served_by"] is None and bad_fields["prompt_tokens"] is None
    assert fields_of(caplog, unauthorized_id)["status"] == 401
    for secret in (PROMPT_MARKER, API_KEY, "wrong-key-", "Bearer"):
        assert secret not in caplog.text


async def test_operational_endpoints_log_at_debug(
    agent: Agent, http: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with http.get(f"{agent.url}/metrics", headers=AUTH) as resp:
        assert resp.status == 200
        rid = resp.headers["X-Request-Id"]
    (record,) = lines_for(caplog, rid)
    assert record.levelno == logging.DEBUG
    assert getattr(record, FIELDS_ATTR)["endpoint"] == "/metrics"
