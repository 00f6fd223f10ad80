"""Streams end generation when the client leaves; a full local queue answers 429."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from tests.edge_agent.api.harness import loaded_engine, metric_value, running_agent, wait_until_idle
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

LONG = {
    "model": "edge",
    "messages": [
        {"role": "user", "content": "Write a very long story about a dragon and a knight."}
    ],
    "max_tokens": 1800,  # ~30 s of generation: finishing naturally would fail the test
    "temperature": 0,
    "stream": True,
}
SHORT = {"model": "edge", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


async def wait_for(predicate: Callable[[], bool]) -> None:
    await eventually(predicate, what="generation stopped")


@pytest.mark.parametrize("handler_cancellation", [True, False], ids=["cancelled", "write-fails"])
async def test_client_disconnect_stops_generation(
    local: LocalEngine, handler_cancellation: bool
) -> None:
    async with running_agent(local, handler_cancellation=handler_cancellation) as agent:
        async with ClientSession() as client:
            response = await client.post(f"{agent.v1}/chat/completions", json=LONG)
            assert response.status == 200
            assert (await response.content.readline()).startswith(b"data: ")  # role chunk
            await response.content.readline()
            assert (await response.content.readline()).startswith(b"data: ")  # a token
            assert local.busy == 1
            generated_before = local.generated_tokens
            response.close()  # drop the connection mid-stream
        await wait_until_idle(local)
        # Uncancelled, it would have run to its 1800 tokens (this prompt never ends sooner).
        assert local.generated_tokens - generated_before < 1800
        await wait_for(
            lambda: (
                metric_value(
                    agent,
                    "tandem_edge_requests_total",
                    endpoint="/v1/chat/completions",
                    served_by="local",
                    status="499",
                )
                == 1
            )
        )
        # the model serves the next client
        async with (
            ClientSession() as client,
            client.post(f"{agent.v1}/chat/completions", json=SHORT) as next_response,
        ):
            assert next_response.status == 200
            assert (await next_response.json())["choices"][0]["message"]["content"]


async def test_full_local_queue_is_429_with_retry_after() -> None:
    async with loaded_engine(max_waiting=0) as engine, running_agent(engine) as agent:
        async with ClientSession() as client:
            first = await client.post(f"{agent.v1}/chat/completions", json=LONG)
            assert (await first.content.readline()).startswith(b"data: ")
            assert engine.busy == 1
            async with client.post(f"{agent.v1}/chat/completions", json=SHORT) as second:
                assert second.status == 429
                assert int(second.headers["Retry-After"]) >= 1
                assert second.headers["X-Tandem-Served-By"] == "local"
                error = (await second.json())["error"]
            assert (error["code"], error["type"]) == ("overloaded", "rate_limit_error")
            first.close()
        await wait_until_idle(engine)
