"""The relay of last resort, end to end: an edge that may not use WebRTC still gets
escalated answers, streamed, through the signaling server's WebSockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI

from devstack.stack import Stack
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def relayed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("relay-logs"), edge_args=["--force-relay"]) as stack:
        yield stack


async def test_escalated_stream_over_the_relay(relayed_stack: Stack) -> None:
    sdk = AsyncOpenAI(base_url=f"{relayed_stack.edge_url}/v1", api_key="unused", max_retries=0)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="cloud",
        messages=[{"role": "user", "content": "Name three fruits."}],
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-tandem-served-by"] == "cloud"
    assert raw.headers["x-tandem-path"] == "relay"
    pieces: list[str] = []
    usage = None
    async for chunk in raw.parse():
        usage = chunk.usage or usage
        pieces.extend(c.delta.content for c in chunk.choices if c.delta.content)
    assert "".join(pieces).strip() and len(pieces) > 1
    assert usage is not None and 0 < usage.completion_tokens <= 20
