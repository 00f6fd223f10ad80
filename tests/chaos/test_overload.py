"""Far more clients than the edge's local queue holds: every answer is 200, 429 or 503
(in the OpenAI error shape, with Retry-After), memory stays bounded, and the edge
answers normally afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import running_stack

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

CLIENTS = 120


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_overload_is_refused_cleanly_and_memory_stays_bounded(tmp_path: Path) -> None:
    with running_stack(tmp_path, edge_args=["--max-queue", "2"]) as stack:
        edge_pid = stack.procs["edge"].pid
        url = f"{stack.edge_url}/v1/chat/completions"
        body = {"model": "edge", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            async with session.post(url, json=body) as warm:
                assert warm.status == 200
            before = rss_kib(edge_pid)

            async def one() -> tuple[int, dict[str, dict[str, object]], str | None]:
                async with session.post(url, json=body) as resp:
                    return resp.status, await resp.json(), resp.headers.get("Retry-After")

            results = await asyncio.gather(*(one() for _ in range(CLIENTS)))
            after = rss_kib(edge_pid)
            statuses = Counter(status for status, _, _ in results)
            print(f"\n{CLIENTS} concurrent clients: {dict(statuses)}; RSS {before} -> {after} KiB")
            assert set(statuses) <= {200, 429, 503}
            assert statuses[200] >= 1 and statuses[429] >= 1  # some served, the rest refused
            for status, payload, retry_after in results:
                if status != 200:
                    assert set(payload["error"]) == {"message", "type", "param", "code"}
                    assert retry_after is not None
            assert after - before < 64 * 1024, "RSS grew by more than 64 MiB under overload"
            async with session.post(url, json=body) as calm:  # and afterwards, business as usual
                assert calm.status == 200
                assert (await calm.json())["choices"][0]["message"]["content"]
