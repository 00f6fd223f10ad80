"""Spot preemption, end to end: the (fake) metadata service announces it, the worker
process drains, the stream in flight finishes, and the worker exits 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.e2e.conftest import running_stack
from tests.support.apps import serving
from tests.support.metadata import Notice, metadata_app

pytestmark = pytest.mark.e2e


async def test_gcp_notice_drains_and_exits_cleanly(tmp_path: Path) -> None:
    notice = Notice()
    async with serving(metadata_app(notice)) as port:
        worker_args = [
            "--spot", "gcp", "--spot-metadata-url", f"http://127.0.0.1:{port}",
            "--spot-poll-s", "0.2", "--drain-grace-s", "20",
        ]  # fmt: skip
        with running_stack(tmp_path, worker_args=worker_args) as stack:
            sdk = AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)
            stream = await sdk.chat.completions.create(
                model="cloud",
                messages=[{"role": "user", "content": "Describe the sea in a few sentences."}],
                max_tokens=60,
                temperature=0,
                stream=True,
            )
            pieces: list[str] = []
            finish = None
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        if len(pieces) == 2:
                            notice.given = True  # preempted mid-stream
                    finish = choice.finish_reason or finish
            assert finish in ("stop", "length"), "the stream must finish within the grace"
            assert "".join(pieces).strip()
            worker = stack.procs["worker"]
            code = await asyncio.to_thread(worker.wait, 30)
            assert code == 0
            log = (tmp_path / "worker.log").read_text()
            assert "spot preemption notice (preempted)" in log
