"""A real headless Chromium (Debian package ``chromium``), driven over the DevTools
protocol on a WebSocket with aiohttp: no selenium or playwright (they download browsers).

Started on a free DevTools port in a throw-away profile, stopped by its process handle.
``--no-sandbox``: CI runs as root, where Chromium's sandbox refuses to start; the browser
only ever loads the test's own loopback pages.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.wait import eventually

__all__ = ["Page", "chromium_page", "needs_chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package 'chromium'; CI installs it)"
)


class Page:
    """One browser tab: navigate, evaluate JavaScript, take screenshots."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.console: list[str] = []
        """Console messages and uncaught exceptions, for failure messages."""

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events that arrive meanwhile are kept)."""
        command_id = next(self._ids)
        await self._ws.send_json({"id": command_id, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json(timeout=60)
            if message.get("id") == command_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.console.append(json.dumps(params.get("exceptionDetails", {}))[:500])

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited if it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


@asynccontextmanager
async def chromium_page(
    profile: Path, *, width: int = 1280, height: int = 900
) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab, closed on exit."""
    assert CHROMIUM is not None
    log = (profile / "chromium.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile / 'user-data'}",
        "about:blank",
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    active = profile / "user-data" / "DevToolsActivePort"
    try:

        def port() -> int | None:
            if proc.returncode is not None:
                raise AssertionError(f"chromium exited ({proc.returncode}): see {log.name}")
            lines = active.read_text().split() if active.exists() else []
            return int(lines[0]) if lines else None

        devtools = await eventually(port, timeout_s=60, what="chromium's DevTools port")
        async with aiohttp.ClientSession() as http:

            async def page_target() -> str | None:
                async with http.get(f"http://127.0.0.1:{devtools}/json/list") as resp:
                    targets = await resp.json()
                pages = [t for t in targets if t.get("type") == "page"]
                return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

            ws_url = await eventually(page_target, timeout_s=30, what="a page target")
            assert ws_url is not None
            async with http.ws_connect(ws_url, max_msg_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.send("Runtime.enable")
                await page.send("Page.enable")
                yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()
