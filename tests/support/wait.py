"""Waiting for something to happen, the one way the tests do it.

Tests wait for an event (a condition turning true, a log line, a metric), never for a
stretch of time: a sleep that is long enough on one machine is too short on a slower
one. Where nothing signals the event (another process's state, an HTTP endpoint), the
condition is polled; the timeout only bounds a test that would otherwise hang, and its
message says what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["eventually", "wait_until"]

T = TypeVar("T")

POLL_S = 0.05


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout_s: float = ...,
    what: str = ...,
    poll_s: float = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    timeout_s: float = ...,
    what: str = ...,
    poll_s: float = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout_s: float = 30.0,
    what: str = "the condition",
    poll_s: float = POLL_S,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that.

    Fails with ``what`` in the message if ``timeout_s`` passes first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not true after {timeout_s:g} s")
        await asyncio.sleep(poll_s)


def wait_until(
    check: Callable[[], T],
    *,
    timeout_s: float = 30.0,
    what: str = "the condition",
    poll_s: float = POLL_S,
) -> T:
    """``eventually`` for code without an event loop (subprocess tests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not true after {timeout_s:g} s")
        time.sleep(poll_s)
