"""The status page in a real headless Chromium against a running agent (real model, real
worker over WebRTC): it asks for the API key, then shows the agent's state and, live,
the requests the test sends, and draws them on its chart.

Set ``TANDEM_UPDATE_SCREENSHOT=1`` to refresh ``docs/status-page.png`` from this run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from tests.edge_agent.api.harness import Agent
from tests.edge_agent.api.status_support import (
    API_KEY,
    PROMPT_MARKER,
    agent_with_cloud,
    chat,
    post_chat,
)
from tests.support.browser import Page, chromium_page, needs_chromium
from tests.support.wait import eventually

pytestmark = [needs_chromium, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

DOCS = Path(__file__).resolve().parents[3] / "docs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Counts pixels of the chart in a series' colour (app.js COLOURS): the chart has drawn.
COLOUR_PIXELS = """
(() => {
  const c = document.getElementById('chart');
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const want = {local: [76, 195, 138], cloud: [90, 169, 255]};
  const counts = {local: 0, cloud: 0};
  for (let i = 0; i < data.length; i += 4) {
    for (const [name, [r, g, b]] of Object.entries(want)) {
      if (Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8
          && Math.abs(data[i + 2] - b) < 8 && data[i + 3] > 200) counts[name]++;
    }
  }
  return counts;
})()
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent() -> AsyncIterator[Agent]:
    async with agent_with_cloud() as running:
        yield running


async def text_of(page: Page, element_id: str) -> Any:
    return await page.evaluate(f"document.getElementById({element_id!r})?.textContent ?? null")


async def until_text(page: Page, element_id: str, want: str) -> None:
    async def shows() -> bool:
        return bool(await text_of(page, element_id) == want)

    try:
        await eventually(shows, timeout_s=60, what=f"#{element_id} showing {want!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; console: {page.console}") from None


async def test_the_page_shows_state_requests_and_a_live_chart(
    agent: Agent, http: ClientSession, tmp_path: Path
) -> None:
    async with chromium_page(tmp_path) as page:
        await page.navigate(f"{agent.url}/status")
        # The agent has a key: the page asks for it before showing anything.
        await until_text(page, "conn", "API key needed")
        assert await page.evaluate("document.getElementById('key-form').hidden") is False
        await page.evaluate(
            f"document.getElementById('key-input').value = {API_KEY!r};"
            "document.getElementById('key-form').requestSubmit(); true"
        )
        await until_text(page, "conn", "live")
        await until_text(page, "cloud-state", "ready")
        assert await text_of(page, "local-model") == "SmolLM2-135M-Instruct.Q4_1"
        assert await text_of(page, "workers-count") == "1"
        assert await page.evaluate("document.getElementById('key-form').hidden") is True

        # Requests sent now appear without a reload.
        ids = []
        for body in (chat("edge"), chat("cloud", stream=True), chat("edge"), chat("cloud")):
            status, request_id = await post_chat(http, agent, body)
            assert status == 200
            ids.append(request_id)

        async def rows() -> dict[str, str]:
            found: dict[str, str] = await page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#recent tr')]"
                ".map(tr => [tr.dataset.requestId, tr.dataset.servedBy]))"
            )
            return found if all(i in found for i in ids) else {}

        bad_status, bad_id = await post_chat(http, agent, {"model": "edge", "messages": "?"})
        assert bad_status == 400
        ids.append(bad_id)
        shown = await eventually(rows, timeout_s=60, what="the requests in the table")
        assert [shown[i] for i in ids] == ["local", "cloud", "local", "cloud", "none"]

        async def points() -> int:
            return int(await page.evaluate("document.getElementById('chart').dataset.points"))

        assert await eventually(lambda: points(), timeout_s=60, what="points on the chart") >= 4

        async def both_colours() -> dict[str, int] | None:
            counts: dict[str, int] = await page.evaluate(COLOUR_PIXELS)
            return counts if counts["local"] > 20 and counts["cloud"] > 20 else None

        await eventually(both_colours, timeout_s=60, what="both series drawn on the canvas")
        budget = await text_of(page, "budget-text")
        spent = int(budget.split("/")[0])
        assert spent > 0, f"the cloud requests count against the budget: {budget!r}"

        html = await page.evaluate("document.documentElement.outerHTML")
        assert API_KEY not in html and PROMPT_MARKER not in html
        assert await page.evaluate("sessionStorage.getItem('tandem-api-key')") == API_KEY
        assert not [m for m in page.console if "Error" in m], page.console

        png = await page.screenshot()
        assert png.startswith(PNG_MAGIC)
        if os.environ.get("TANDEM_UPDATE_SCREENSHOT"):
            (DOCS / "status-page.png").write_bytes(png)
