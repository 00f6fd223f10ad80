"""Far more clients than the edge's local queue holds: every one that does not fit is
refused at once with 429 (in the OpenAI error shape, with Retry-After), the ones that fit
wait their turn and are served, memory stays bounded, and the edge answers normally
afterwards.

The model is held busy by a long stream while the crowd arrives, so which requests fit
depends on the queue's size alone, not on how fast the machine serves short answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import running_stack
from tests.support.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

CLIENTS = 120
QUEUE = 2

HOLDER = {
    "model": "edge",
    "stream": True,
    "max_tokens": 1800,  # far longer than the crowd takes to be answered
    "temperature": 0,
    "messages": [
        {"role": "user", "content": "Write a very long story about a dragon and a knight."}
    ],
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_overload_is_refused_cleanly_and_memory_stays_bounded(tmp_path: Path) -> None:
    with running_stack(tmp_path, edge_args=["--max-queue", str(QUEUE)]) as stack:
        edge_pid = stack.procs["edge"].pid
        url = f"{stack.edge_url}/v1/chat/completions"
        body = {"model": "edge", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            async with session.post(url, json=body) as warm:
                assert warm.status == 200
            before = rss_kib(edge_pid)

            async def one() -> tuple[int, dict[str, dict[str, object]], str | None]:
                async with session.post(url, json=body) as resp:
                    return resp.status, await resp.json(), resp.headers.get("Retry-After")

            holder = await session.post(url, json=HOLDER)
            assert holder.status == 200
            await holder.content.readline()  # generating: the crowd finds the model busy
            crowd = [asyncio.create_task(one()) for _ in range(CLIENTS)]
            await eventually(
                lambda: sum(t.done() for t in crowd) == CLIENTS - QUEUE,
                timeout_s=120,
                what="everyone but the queued answered",
            )
            holder.close()  # the holder leaves: its generation stops, the queue moves
            results = await asyncio.gather(*crowd)
            after = rss_kib(edge_pid)
            statuses = Counter(status for status, _, _ in results)
            print(f"\n{CLIENTS} concurrent clients: {dict(statuses)}; RSS {before} -> {after} KiB")
            assert statuses == {200: QUEUE, 429: CLIENTS - QUEUE}
            for status, payload, retry_after in results:
                if status != 200:
                    assert set(payload["error"]) == {"message", "type", "param", "code"}
                    assert retry_after is not None
            assert after - before < 64 * 1024, "RSS grew by more than 64 MiB under overload"
            async with session.post(url, json=body) as calm:  # and afterwards, business as usual
                assert calm.status == 200
                assert (await calm.json())["choices"][0]["message"]["content"]
