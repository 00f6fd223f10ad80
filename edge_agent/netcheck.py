"""``edge-agent netcheck``: what this network lets Tandem do, like ``tailscale netcheck``.

One line per probe, then a verdict: signaling (the WebSocket and its token), STUN over
UDP (the address the world sees), NAT behaviour (one local socket, two STUN servers:
the same mapping means an easy NAT where hole punching works, a different one a hard,
symmetric NAT), and a TURN allocation over UDP, TCP and TLS with this peer's
credentials, each on the URL signaling offers for it (a transport it does not offer is
tried anyway and reported as not offered). The verdict names the path the edge will
most likely use.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from link import SignalingClient, SignalingUnavailable
from link.probe import mappings, parse_host_port, stun_binding, turn_allocate
from link.rtc import turn_transport_of
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
    expected_path: str = "unknown"  # direct | turn-udp | turn-tcp | turn-tls | relay | none

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
    turn = tuple(s for s in servers if s.username and any(u.startswith("turn") for u in s.urls))
    return stun, turn


async def _probe_turn(
    turn: tuple[IceServer, ...], report: NetcheckReport
) -> tuple[dict[str, bool], bool]:
    """A TURN allocation per transport, on the URL signaling offers for it (named in the
    report, so that an operator sees what was tried). A transport signaling does not
    offer (UDP or TCP) is tried anyway on the first ``turn:`` server and reported as not
    offered: peers cannot use it, whatever the network allows. Returns which transports
    peers can use here, and whether TCP works although it is not offered."""
    usable = {"udp": False, "tcp": False, "tls": False}
    unoffered_tcp_works = False
    if not turn:
        report.probes.append(Probe("turn", False, "signaling hands out no TURN server"))
        return usable, unoffered_tcp_works
    server = turn[0]
    offers: dict[str, str] = {}
    for offered in server.urls:
        if offered.startswith("turn"):
            offers.setdefault(turn_transport_of(offered), offered)
    plain = next((u for u in server.urls if u.startswith("turn:")), None)
    for transport in ("udp", "tcp", "tls"):
        url = offers.get(transport)
        target = url or (plain if transport != "tls" else None)
        if target is None:
            report.probes.append(
                Probe("turn-tls", False, "not offered by signaling (no turns: URL)")
            )
            continue
        host, port = parse_host_port(target)
        relay, ms = await _timed(
            turn_allocate(
                host,
                port,
                username=server.username or "",
                password=server.credential or "",
                transport=transport,
            )
        )
        got = f"relay allocated at {relay[0]}:{relay[1]}" if relay else "allocation failed"
        if url is not None:
            usable[transport] = relay is not None
            detail = f"{url}: {got}"
        else:
            unoffered_tcp_works |= transport == "tcp" and relay is not None
            detail = f"not offered by signaling (tried {host}:{port} over {transport}: {got})"
        report.probes.append(
            Probe(f"turn-{transport}", usable[transport], detail, ms if relay else None)
        )
    return usable, unoffered_tcp_works


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

    turn_ok, unoffered_tcp_works = await _probe_turn(turn, report)

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
    elif not udp_open and turn_ok["tls"]:
        report.nat = "udp-blocked"
        report.verdict, report.expected_path = (
            "UDP and TURN's TCP port blocked, TLS passes: expect TURN over TLS",
            "turn-tls",
        )
    elif not udp_open:
        hint = (
            "; TURN over TCP works here but signaling does not offer it (give it a turn: URL "
            "without ?transport=, or one with ?transport=tcp)"
            if unoffered_tcp_works
            else ""
        )
        report.verdict, report.expected_path = (
            f"only signaling is reachable: expect the relay through signaling{hint}",
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
