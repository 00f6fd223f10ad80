"""``Handoff``: a real producer thread, the event loop as the reader."""

from __future__ import annotations

import asyncio
import threading

import pytest

from inference.handoff import Handoff
from tests.support.wait import eventually


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Handoff(asyncio.new_event_loop(), 0)


async def test_a_slow_reader_slows_the_producer_and_loses_nothing() -> None:
    loop = asyncio.get_running_loop()
    handoff: Handoff[int] = Handoff(loop, capacity=3)
    produced: list[int] = []

    def produce() -> None:
        for i in range(40):
            if not handoff.put(i):
                return
            produced.append(i)

    thread = loop.run_in_executor(None, produce)
    received: list[int] = []
    try:
        while len(received) < 40:
            # The reader dawdles: it waits until the producer can go no further, or is done.
            await eventually(lambda: handoff.stalled or thread.done(), what="the producer blocked")
            assert handoff.backlog <= 3
            if handoff.stalled:
                assert len(produced) - len(received) == 3, "it ran no further than the bound"
            received.append(await handoff.get())
    finally:
        handoff.cancel()  # a failed assertion must not leave the thread waiting
        await thread
    assert received == list(range(40))
    assert not handoff.dropped


async def test_cancel_wakes_a_waiting_producer_and_drops_what_follows() -> None:
    loop = asyncio.get_running_loop()
    handoff: Handoff[int] = Handoff(loop, capacity=2)
    results: list[bool] = []

    def produce() -> None:
        results.extend(handoff.put(i) for i in range(5))

    thread = loop.run_in_executor(None, produce)
    try:
        await eventually(lambda: handoff.stalled, what="the producer blocked on a full hand-off")
    finally:
        handoff.cancel()
        await thread  # no deadlock: the producer returned
    assert results == [True, True, False, False, False]
    assert handoff.dropped and handoff.cancelled
    assert [await handoff.get(), await handoff.get()] == [0, 1]
    assert handoff.empty()


async def test_the_final_item_gets_through_after_cancel_and_when_full() -> None:
    loop = asyncio.get_running_loop()
    handoff: Handoff[object] = Handoff(loop, capacity=1)
    done = threading.Event()

    def produce() -> None:
        handoff.put("chunk")
        handoff.cancel()  # aclose() cancels while the reader still reads
        handoff.put_final(RuntimeError("unloaded"))
        done.set()

    await loop.run_in_executor(None, produce)
    assert done.is_set()
    assert await handoff.get() == "chunk"
    final = await handoff.get()
    assert isinstance(final, RuntimeError)
    assert handoff.backlog == 0
