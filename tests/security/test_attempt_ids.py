"""A failover must never reuse a request id on the worker that may still hold the last one.

The attack (issue 13, item 6): a worker stalls (frozen: the edge's frames wait in its
socket), a request's first attempt times out waiting for a first token and is retried on
the same worker, its only one. When the worker wakes it reads the first attempt, its
cancel and the retry in one go; with one request id for both, the retry arrived while
the cancelled first attempt was still registered, and the worker refused it as a
duplicate (a 400 had the client still been waiting there; late frames of the first
could also have landed in the second). Each attempt now carries its own id: the worker
sees two distinct streams and cancels both, refusing none.
"""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import running_stack
from tests.e2e.test_cloud_failures import HARD, chat_url, worker_metric
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

STREAMS = "tandem_worker_streams_total"


async def test_a_retry_on_the_same_worker_is_not_a_duplicate(tmp_path: Path) -> None:
    edge_args = [
        "--first-token-timeout-s", "1", "--dead-after-s", "600", "--max-failovers", "1",
    ]  # fmt: skip
    with running_stack(tmp_path, edge_args=edge_args) as stack:
        worker = stack.procs["worker"]
        worker.send_signal(signal.SIGSTOP)
        try:
            body = {"model": "auto", "max_tokens": 8, "messages": HARD}
            async with aiohttp.ClientSession() as http, http.post(chat_url(stack), json=body) as r:
                assert r.status == 200 and r.headers["X-Tandem-Served-By"] == "local"
                assert r.headers["X-Tandem-Failovers"] == "2"  # two stalled attempts, then here
        finally:
            worker.send_signal(signal.SIGCONT)

        def both_attempts_ended() -> bool:
            ended = sum(worker_metric(stack, STREAMS, result=r) for r in ("cancelled", "refused"))
            return ended >= 2

        await eventually(both_attempts_ended, what="the woken worker handled both attempts")
        assert worker_metric(stack, STREAMS, result="refused") == 0, "a duplicate id was refused"
        assert worker_metric(stack, STREAMS, result="cancelled") == 2
