"""``edge-agent netcheck``: what this network lets Tandem do, like ``tailscale netcheck``.

One line per probe, then a verdict: signaling (the WebSocket and its token), STUN over
UDP (the address the world sees), NAT behaviour (one local socket, two STUN servers:
the same mapping means an easy NAT where hole punching works, a different one a hard,
symmetric NAT), and a TURN allocation over UDP and over TCP with this peer's
credentials. The verdict names the path the edge will most likely use.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from link import SignalingClient, SignalingUnavailable
from link.probe import mappings, parse_host_port, stun_binding, turn_allocate
from shared.messages import IceServer

__all__ = ["NetcheckReport", "Probe", "run_netcheck"]

T = TypeVar("T")


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str
    ms: float | None = None


@dataclass
class NetcheckReport:
    probes: list[Probe] = field(default_factory=list)
    nat: str = "unknown"  # easy | hard | udp-blocked | unknown
    verdict: str = ""
    expected_path: str = "unknown"  # direct | turn-udp | turn-tcp | relay | none

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"{p.name:<14} {'ok ' if p.ok else 'FAIL'} {p.detail}"
            + (f" ({p.ms:.0f} ms)" if p.ms is not None else "")
            for p in self.probes
        ]
        out.append(f"verdict: {self.verdict}")
        return out


async def _timed(coro: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await coro
    return result, (time.perf_counter() - start) * 1000


def _split(servers: tuple[IceServer, ...]) -> tuple[list[tuple[str, int]], tuple[IceServer, ...]]:
    stun = [parse_host_port(u) for s in servers for u in s.urls if u.startswith("stun:")]
    turn = tuple(s for s in servers if s.username and any(u.startswith("turn:") for u in s.urls))
    return stun, turn


async def run_netcheck(
    url: str,
    token: str | Callable[[], str],
    *,
    timeout_s: float = 10.0,
    ca_file: Path | None = None,
    insecure_signaling: bool = False,
) -> NetcheckReport:
    """Probe everything; ``ValueError`` if ``url`` may not be used (``link.tls``)."""
    report = NetcheckReport()
    client = SignalingClient(
        url,
        token,
        reconnect_max_s=timeout_s,
        ca_file=ca_file,
        insecure_signaling=insecure_signaling,
    )
    client.start()
    try:
        try:
            _, ms = await _timed(client.wait_connected(timeout_s))
        except SignalingUnavailable:
            why = client.last_error or "no answer"
            report.probes.append(
                Probe("signaling", False, f"no authenticated WebSocket to {url}: {why}")
            )
            report.verdict = "signaling unreachable (or the token was refused): no cloud from here"
            report.expected_path = "none"
            return report
        report.probes.append(Probe("signaling", True, f"{url} as {client.peer_id}", ms))
        stun, turn = _split(client.ice_servers)
    finally:
        await client.aclose()

    udp_open = False
    if stun:
        mapped, ms = await _timed(stun_binding(*stun[0], timeout_s=1.5))
        udp_open = mapped is not None
        report.probes.append(
            Probe(
                "stun-udp",
                udp_open,
                f"seen as {mapped[0]}:{mapped[1]}" if mapped else "no answer: UDP blocked?",
                ms if udp_open else None,
            )
        )
        if udp_open and len(stun) >= 2:
            seen = await mappings(stun[:2], timeout_s=1.5)
            if all(seen):
                report.nat = "easy" if seen[0] == seen[1] else "hard"
                detail = (
                    "same mapping for two servers: endpoint-independent (easy)"
                    if report.nat == "easy"
                    else f"mapping changes per destination ({seen[0]} vs {seen[1]}): hard"
                )
                report.probes.append(Probe("nat", True, detail))
        elif not udp_open:
            report.nat = "udp-blocked"
    else:
        report.probes.append(Probe("stun-udp", False, "signaling hands out no STUN server"))

    turn_ok = {"udp": False, "tcp": False}
    for server in turn[:1]:
        host, port = parse_host_port(next(u for u in server.urls if u.startswith("turn:")))
        for transport in ("udp", "tcp"):
            relay, ms = await _timed(
                turn_allocate(
                    host,
                    port,
                    username=server.username or "",
                    password=server.credential or "",
                    transport=transport,
                )
            )
            turn_ok[transport] = relay is not None
            report.probes.append(
                Probe(
                    f"turn-{transport}",
                    relay is not None,
                    f"relay allocated at {relay[0]}:{relay[1]}" if relay else "allocation failed",
                    ms if relay else None,
                )
            )
    if not turn:
        report.probes.append(Probe("turn", False, "signaling hands out no TURN server"))

    if report.nat == "easy":
        report.verdict, report.expected_path = (
            "easy NAT: expect a direct path (hole punching)",
            "direct",
        )
    elif report.nat == "hard" and turn_ok["udp"]:
        report.verdict, report.expected_path = "hard NAT: expect TURN over UDP", "turn-udp"
    elif not udp_open and turn_ok["tcp"]:
        report.nat = "udp-blocked"
        report.verdict, report.expected_path = "UDP blocked: expect TURN over TCP", "turn-tcp"
    elif not udp_open and not turn_ok["tcp"]:
        report.verdict, report.expected_path = (
            "only signaling is reachable: expect the relay through signaling",
            "relay",
        )
    elif turn_ok["udp"]:
        report.verdict, report.expected_path = (
            "NAT type unknown (one STUN server): direct or TURN",
            "turn-udp",
        )
    else:
        report.verdict, report.expected_path = (
            "no TURN: direct if the NAT allows, else the relay",
            "relay",
        )
    return report
