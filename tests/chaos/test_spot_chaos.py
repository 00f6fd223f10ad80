"""A spot fleet at its worst: streamed requests while workers are killed (SIGKILL),
terminated (SIGTERM) and preempted (a metadata notice) in the middle of a stream, and
replaced as a spot fleet would replace them. Every request must finish, with no text
lost or repeated.

Faults follow the streams, not the clock. Once the fleet is whole, the next stream that
has delivered ``TRIGGER_PIECES`` pieces offers itself as a victim: the worker serving it
(the one whose ``/healthz`` shows streams) is taken away by the next kind of failure.
The injector then waits until every stream that was in flight has ended and reads, from
those streams themselves (the ``: x-tandem-failover`` comments the edge writes when a
stream moves), whether one that had started moved mid-generation. The run goes on until
every kind has cut ``MIN_CUTS_PER_KIND`` streams that way (and at least ``REQUESTS``
requests ran), whatever the machine's speed, and fails if ``MAX_REQUESTS`` requests pass
without that. Workers drain with no grace (``--drain-grace-s 0``): a SIGTERM or a notice
hands off what is running at once, so it cuts streams on a fast machine too (finishing
within the grace is ``tests/e2e/test_preemption.py``'s subject).

The oracle. Exact equality with an uninterrupted run is not a fair one: a resumed stream
re-reads the delivered text as one batch, whose floating-point sums differ from the
token-by-token ones, and near-ties flip. So every prompt asks the real model to count
(a few-shot "count from N to N+40"), and the client checks what it received: numbers
that go up by exactly one. Text lost at a failover leaves a gap, text repeated leaves a
step back; either fails the request. The model miscounts some prompts on its own, so a
request that fails the check is run again without any failure injected: if that
reference miscounts too, the prompt says nothing about failover and is reported as
unfit rather than passed; if the reference counts right, the failover broke the text.
Token accounting is checked too: a stream cut at ``max_tokens`` must report exactly
that many completion tokens, however many workers produced them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from devstack.stack import Stack, free_port
from tests.e2e.conftest import running_stack
from tests.support.apps import serving
from tests.support.metadata import Notice, metadata_app
from tests.support.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

REQUESTS = 100
"""At least this many requests run, however soon the quotas below are met."""
MAX_REQUESTS = 400
"""The run fails if this many pass without every kind's quota of cuts."""
MIN_CUTS_PER_KIND = 3
"""Mid-stream failovers each kind of failure must cause."""
CONCURRENCY = 2
MAX_TOKENS = 64
TRIGGER_PIECES = 4
"""A stream offers itself as a victim once it has delivered this many pieces of text."""
REPLACE_AFTER_S = (0.5, 2.0)
"""A replacement worker starts this long after its predecessor exited (a spot fleet's
pause; it is not what any assertion waits for)."""
KINDS = ("SIGKILL", "SIGTERM", "notice")
SEED = 20261129

FEW_SHOT = [
    {"role": "user", "content": "Count from 212 to 219, separated by commas."},
    {"role": "assistant", "content": "212, 213, 214, 215, 216, 217, 218, 219"},
    {"role": "user", "content": "Count from 57 to 63, separated by commas."},
    {"role": "assistant", "content": "57, 58, 59, 60, 61, 62, 63"},
]
"""Two worked examples: with them SmolLM2-135M counts right about nine times in ten;
asked plainly, about one in ten."""

FAILOVER_NOTE = re.compile(rb"^: x-tandem-failover to=(\w+) after_tokens=(\d+)$")


def counting_prompt(start: int) -> list[dict[str, str]]:
    ask = f"Count from {start} to {start + 40}, separated by commas."
    return [*FEW_SHOT, {"role": "user", "content": ask}]


def counts_up(text: str) -> bool:
    """Whether ``text`` is a run of numbers each one more than the last (at least five)."""
    nums = [int(n) for n in re.findall(r"\d+", text)]
    return len(nums) >= 5 and all(b == a + 1 for a, b in itertools.pairwise(nums))


@dataclass
class Outcome:
    """One streamed request, as its client saw it (updated while it streams)."""

    start: int
    status: int = 0
    text: str = ""
    pieces: int = 0
    failovers: list[tuple[str, int]] = field(default_factory=list)
    """(who serves from then on, tokens delivered before), from the stream's comments."""
    finish: str | None = None
    completion_tokens: int | None = None
    longest_gap_s: float = 0.0
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def stream_once(
    session: aiohttp.ClientSession,
    url: str,
    out: Outcome,
    route: str = "cloud",
    on_piece: Callable[[Outcome], None] = lambda _: None,
) -> Outcome:
    """One streamed chat completion, read the way an SSE client reads it, into ``out``."""
    start = out.start
    body = {
        "model": route,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "messages": counting_prompt(start),
    }
    pieces: list[str] = []
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
            out.status = resp.status
            last = time.monotonic()
            async for raw in resp.content:
                line = raw.strip()
                if note := FAILOVER_NOTE.match(line):
                    out.failovers.append((note[1].decode(), int(note[2])))
                    continue
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                now = time.monotonic()
                out.longest_gap_s = max(out.longest_gap_s, now - last)
                last = now
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    out.error = json.dumps(chunk["error"])
                    continue
                for choice in chunk.get("choices", []):
                    if content := choice["delta"].get("content"):
                        pieces.append(content)
                        out.pieces += 1
                        on_piece(out)
                    out.finish = choice.get("finish_reason") or out.finish
                if chunk.get("usage"):
                    out.completion_tokens = chunk["usage"]["completion_tokens"]
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        out.text = "".join(pieces)
        out.done.set()
    return out


@dataclass
class Slot:
    """One place in the fleet: a worker process, its metadata service, its history."""

    index: int
    notice: Notice
    metadata_url: str
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    generation: int = 0
    exits: list[tuple[str, int]] = field(default_factory=list)


class Fleet:
    """Two worker slots; each worker that exits is replaced after a short while."""

    def __init__(self, stack: Stack, slots: list[Slot], rng: random.Random) -> None:
        self.stack = stack
        self.slots = slots
        self.rng = rng
        self.pending: dict[int, str] = {}
        self.replace_s: list[float] = []

    def launch(self, slot: Slot) -> None:
        slot.generation += 1
        slot.port = free_port()
        slot.notice.given = False
        name = f"worker-s{slot.index}-g{slot.generation}"
        args = [
            "--spot", "gcp", "--spot-metadata-url", slot.metadata_url, "--spot-poll-s", "0.05",
            "--drain-grace-s", "0",
        ]  # fmt: skip
        slot.proc = self.stack.start_worker(name, name, slot.port, args)

    def health(self, slot: Slot) -> dict[str, object] | None:
        """The slot's worker ``/healthz`` body when it is up and not being taken away."""
        if slot.proc is None or slot.proc.poll() is not None or slot.index in self.pending:
            return None
        try:
            url = f"http://127.0.0.1:{slot.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                body: dict[str, object] = json.loads(resp.read())
                return body if resp.status == 200 else None
        except OSError:
            return None

    async def whole(self) -> bool:
        bodies = [await asyncio.to_thread(self.health, s) for s in self.slots]
        return all(b is not None and b.get("signaling") == "connected" for b in bodies)

    async def serving(self) -> Slot | None:
        """A live worker with a stream running on it, if there is one."""
        for slot in self.slots:
            body = await asyncio.to_thread(self.health, slot)
            if body is not None and int(str(body.get("active_streams", 0))) > 0:
                return slot
        return None

    async def supervise(self, slot: Slot) -> None:
        """Wait for the worker to exit, note how, start its replacement."""
        while True:
            assert slot.proc is not None
            code = await asyncio.to_thread(slot.proc.wait)
            died = time.monotonic()
            slot.exits.append((self.pending.pop(slot.index, "unprovoked"), code))
            await asyncio.sleep(self.rng.uniform(*REPLACE_AFTER_S))
            self.launch(slot)
            await eventually(
                lambda: asyncio.to_thread(self.health, slot),
                timeout_s=120,
                what=f"replacement worker of slot {slot.index} healthy",
            )
            self.replace_s.append(time.monotonic() - died)

    def take_away(self, slot: Slot, kind: str) -> None:
        assert slot.proc is not None
        self.pending[slot.index] = kind
        if kind == "notice":
            slot.notice.given = True
        else:
            slot.proc.send_signal(signal.SIGKILL if kind == "SIGKILL" else signal.SIGTERM)


@dataclass(frozen=True)
class Injection:
    kind: str
    cut: bool
    """Whether a stream that had started moved mid-generation because of it."""


class Injector:
    """Takes a worker away whenever a stream offers itself, one fault at a time."""

    def __init__(self, fleet: Fleet, in_flight: Callable[[], list[Outcome]]) -> None:
        self.fleet = fleet
        self.in_flight = in_flight
        self.done: list[Injection] = []
        self._armed = False
        self._offers: asyncio.Queue[Outcome] = asyncio.Queue(maxsize=1)

    def cuts(self) -> Counter[str]:
        return Counter(i.kind for i in self.done if i.cut)

    def satisfied(self) -> bool:
        cuts = self.cuts()
        return all(cuts[kind] >= MIN_CUTS_PER_KIND for kind in KINDS)

    def offer(self, outcome: Outcome) -> None:
        """Called for every piece every stream receives."""
        if self._armed and outcome.pieces >= TRIGGER_PIECES:
            self._armed = False
            self._offers.put_nowait(outcome)

    def _next_kind(self) -> str:
        cuts, tries = self.cuts(), Counter(i.kind for i in self.done)
        return min(KINDS, key=lambda k: (cuts[k] >= MIN_CUTS_PER_KIND, cuts[k], tries[k]))

    async def run(self) -> None:
        while not self.satisfied():
            await eventually(self.fleet.whole, timeout_s=180, what="the fleet whole again")
            self._armed = True
            victim = await self._offers.get()
            slot = await self.fleet.serving()
            if victim.done.is_set() or slot is None:
                continue  # finished before we got to it, or served locally: next one
            witnesses = [(o, o.pieces, len(o.failovers)) for o in self.in_flight()]
            kind = self._next_kind()
            self.fleet.take_away(slot, kind)
            await asyncio.gather(*(o.done.wait() for o, _, _ in witnesses))
            cut = any(
                pieces > 0 and any(after > 0 for _, after in o.failovers[seen:])
                for o, pieces, seen in witnesses
            )
            self.done.append(Injection(kind, cut))


@asynccontextmanager
async def metadata_services(n: int) -> AsyncIterator[list[tuple[Notice, str]]]:
    async with AsyncExitStack() as stack:
        services = []
        for _ in range(n):
            notice = Notice()
            port = await stack.enter_async_context(serving(metadata_app(notice)))
            services.append((notice, f"http://127.0.0.1:{port}"))
        yield services


def cloud_ready(edge_url: str) -> bool:
    with urllib.request.urlopen(f"{edge_url}/healthz", timeout=5) as resp:
        return bool(json.loads(resp.read()).get("cloud") == "ready")


def failovers_total(edge_url: str) -> float:
    with urllib.request.urlopen(f"{edge_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tandem_edge_failovers_total{")
    )


async def test_streams_survive_workers_killed_terminated_and_preempted_mid_stream(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    edge_args = ["--max-failovers", "8", "--failover-wait-s", "3", "--max-queue", "64"]
    async with metadata_services(2) as services:
        with running_stack(tmp_path, edge_args=edge_args) as stack:
            # The stack's own worker leaves; two chaos slots take its place.
            stack.procs["worker"].send_signal(signal.SIGTERM)
            await asyncio.to_thread(stack.procs["worker"].wait, 30)
            slots = [Slot(i, notice, url) for i, (notice, url) in enumerate(services)]
            fleet = Fleet(stack, slots, rng)
            for slot in slots:
                fleet.launch(slot)
            await eventually(
                lambda: asyncio.to_thread(cloud_ready, stack.edge_url),
                timeout_s=120,
                what="the edge linked to a worker of the fleet",
            )
            before = failovers_total(stack.edge_url)

            outcomes: list[Outcome] = []
            injector = Injector(fleet, lambda: [o for o in outcomes if not o.done.is_set()])
            supervisors = [asyncio.create_task(fleet.supervise(s)) for s in slots]
            injecting = asyncio.create_task(injector.run())
            gate = asyncio.Semaphore(CONCURRENCY)
            began = time.monotonic()
            try:
                async with aiohttp.ClientSession() as session:

                    async def one(start: int) -> None:
                        out = Outcome(start)
                        outcomes.append(out)  # in flight from now on
                        try:
                            await stream_once(session, stack.edge_url, out, on_piece=injector.offer)
                        finally:
                            gate.release()

                    running: list[asyncio.Task[None]] = []
                    while len(running) < REQUESTS or (
                        not injector.satisfied() and len(running) < MAX_REQUESTS
                    ):
                        await gate.acquire()
                        if injecting.done():
                            injecting.result()  # an injector that failed fails the test
                        running.append(asyncio.create_task(one(rng.randint(10, 400))))
                    await asyncio.gather(*running)
                    elapsed = time.monotonic() - began
                    injecting.cancel()

                    # References for prompts the check rejects: no failure injected now
                    # (the injector is stopped; the local model answers them).
                    bad = [o for o in outcomes if not counts_up(o.text)]
                    references = {
                        o.start: await stream_once(
                            session, stack.edge_url, Outcome(o.start), "local"
                        )
                        for o in bad
                    }
            finally:
                injecting.cancel()
                for task in supervisors:
                    task.cancel()
                await asyncio.gather(injecting, *supervisors, return_exceptions=True)
            failovers = failovers_total(stack.edge_url) - before

    incomplete = [o for o in outcomes if o.status != 200 or o.error or o.finish is None]
    unfit = [o for o in bad if not counts_up(references[o.start].text)]
    broken = [o for o in bad if counts_up(references[o.start].text)]
    miscounted = [o for o in outcomes if o.finish == "length" and o.completion_tokens != MAX_TOKENS]
    exits = Counter((kind, code) for s in slots for kind, code in s.exits)
    reported = sum(len(o.failovers) for o in outcomes)
    mid_stream = sum(1 for o in outcomes for _, after in o.failovers if after > 0)
    cuts = injector.cuts()
    tries = Counter(i.kind for i in injector.done)
    gaps = sorted(o.longest_gap_s for o in outcomes)
    print(
        f"\n{len(outcomes)} streamed requests in {elapsed:.0f} s, {CONCURRENCY} at a time; "
        f"faults injected: {dict(tries)}, of which cut a stream mid-generation: {dict(cuts)}; "
        f"worker exits (how, code): {dict(exits)}; failovers: {failovers:.0f} "
        f"({mid_stream} mid-stream); incomplete: {len(incomplete)}; "
        f"lost or repeated text: {len(broken)} (checked {len(outcomes) - len(unfit)}, "
        f"{len(unfit)} prompts the model miscounts even undisturbed); "
        f"token count off: {len(miscounted)}; longest pause in a stream: "
        f"p50 {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s; "
        f"worker replaced (exit to ready): max {max(fleet.replace_s, default=0):.1f} s"
    )
    for o in incomplete + broken + miscounted:
        print(f"  {o.start}: {o.status} {o.finish} {o.completion_tokens} {o.error} {o.text!r}")
        if o.start in references:
            print(f"    reference: {references[o.start].text!r}")

    assert all(cuts[k] >= MIN_CUTS_PER_KIND for k in KINDS), (
        f"each kind of failure must cut >= {MIN_CUTS_PER_KIND} streams mid-generation within "
        f"{MAX_REQUESTS} requests: cuts {dict(cuts)} of faults {dict(tries)}"
    )
    assert not incomplete, "every request completes"
    assert not broken, "no text lost or repeated across failovers"
    assert not miscounted, "usage counts every token the client received, once"
    assert len(unfit) <= len(outcomes) // 4, "the counting oracle must check most requests"
    assert failovers == reported, "every failover the edge counts is reported in its stream"
    assert not [k for k, _ in exits if k == "unprovoked"], f"a worker died by itself: {exits}"
    drained = [code for (kind, code) in exits if kind in ("SIGTERM", "notice")]
    assert all(code == 0 for code in drained), f"a preempted worker exits 0: {exits}"
