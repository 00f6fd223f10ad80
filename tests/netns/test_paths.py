"""The NAT matrix: every scenario connects, on the best path it allows, for real.

Each test builds its own emulated internet (network namespaces, veth, a bridge,
iptables NAT on router namespaces), runs coturn and signaling on a public host, a
worker and an edge behind their routers, and asserts the path the edge reports for a
real escalated completion. Everything is torn down even when the test fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns.stack import SIGNALING_PORT, NetStack
from tests.netns.topology import Nat, Network, sh

pytestmark = [pytest.mark.netns, pytest.mark.e2e]


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "iptables", "turnserver"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install iproute2 iptables coturn)"
    return None


@pytest.fixture(autouse=True)
def _requirements() -> None:
    why = _missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the NAT matrix: {why}")
        pytest.skip(why)


@dataclass
class Scenario:
    edge_nat: Nat
    worker_nat: Nat
    expected: str
    same_lan: bool = False
    edge_udp_blocked: bool = False
    edge_tcp_only_to_signaling: bool = False
    edge_args: tuple[str, ...] = ()


SCENARIOS = {
    "1-same-lan": Scenario(Nat.EASY, Nat.EASY, "direct", same_lan=True),
    "2-easy-nats": Scenario(Nat.EASY, Nat.EASY, "direct"),
    "3-hard-nats": Scenario(Nat.HARD, Nat.HARD, "turn-udp"),
    "4-udp-blocked": Scenario(Nat.EASY, Nat.EASY, "turn-tcp", edge_udp_blocked=True),
    "5-tcp-to-signaling-only": Scenario(
        Nat.EASY, Nat.HARD, "relay", edge_tcp_only_to_signaling=True
    ),
}


@pytest.fixture
def network() -> Iterator[Network]:
    net = Network()
    try:
        yield net
    finally:
        net.close()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str, network: Network, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    stack = NetStack(tmp_path)
    try:
        svc_ns, svc_ip = network.public_host("svc")
        svc_ip2 = network.second_address(svc_ns)
        stack.coturn(svc_ns, svc_ip, svc_ip2)
        stack.signaling(svc_ns, svc_ip, svc_ip2)
        worker_site = network.site("wsite", scenario.worker_nat)
        if scenario.same_lan:
            edge_site = worker_site
        else:
            edge_site = network.site(
                "esite",
                scenario.edge_nat,
                udp_blocked=scenario.edge_udp_blocked,
                tcp_only_to=(svc_ip, SIGNALING_PORT)
                if scenario.edge_tcp_only_to_signaling
                else None,
            )
        worker_ns, _ = network.add_host(worker_site, "worker")
        edge_ns, _ = network.add_host(edge_site, "edge")
        stack.worker(worker_ns)
        # Upgrades tried every 2 s (doubling on failure) instead of every 30 s.
        stack.edge(edge_ns, "--relay-upgrade-interval-s", "2", *scenario.edge_args)
        linked_after = stack.wait_cloud_ready(edge_ns)
        result = stack.probe(edge_ns, "cloud")
        print(
            f"\n{name}: path {result['headers'].get('x-tandem-path')}, linked after "
            f"{linked_after:.1f} s, first escalated token {result['ttft_s']:.3f} s"
        )
        if result["headers"].get("x-tandem-path") != scenario.expected == "direct":
            # aioice nominates the first pair whose check succeeds: under load a TURN
            # pair can win, and the edge must then lift the link to a direct one.
            upgraded_after = stack.wait_cloud_path(edge_ns, "direct")
            print(
                f"{name}: linked over TURN first, upgraded to direct {upgraded_after:.1f} s later"
            )
            result = stack.probe(edge_ns, "cloud")
        assert result["status"] == 200
        assert result["headers"]["x-tandem-served-by"] == "cloud"
        assert result["headers"]["x-tandem-path"] == scenario.expected
        assert result["chunks"] > 1 and str(result["text"]).strip()
        assert result["usage"]["completion_tokens"] > 0
        # netcheck, run where the edge runs, predicts the path the edge took.
        check = stack.netcheck(edge_ns)
        print("netcheck:", check["verdict"], [(p["name"], p["ok"]) for p in check["probes"]])
        assert check["expected_path"] == scenario.expected
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()


def test_a_turn_link_is_lifted_to_direct_once_direct_works(
    network: Network, tmp_path: Path
) -> None:
    """Easy NATs, but the edge's router drops UDP between the two sites at first: the
    link comes up over TURN. Once the block is lifted, the edge moves to a direct link
    by itself (direct-only retries), and new requests take it."""
    stack = NetStack(tmp_path)
    try:
        svc_ns, svc_ip = network.public_host("svc")
        stack.coturn(svc_ns, svc_ip, network.second_address(svc_ns))
        stack.signaling(svc_ns, svc_ip, network.second_address(svc_ns))
        worker_site = network.site("wsite", Nat.EASY)
        edge_site = network.site("esite", Nat.EASY)
        block = [
            ("-d", worker_site.wan_ip),  # edge -> worker, punched or not
            ("-s", worker_site.wan_ip),  # worker -> edge
        ]
        for direction in block:
            sh("ip", "netns", "exec", edge_site.router, "iptables", "-I", "FORWARD",
               "-p", "udp", *direction, "-j", "DROP")  # fmt: skip
        worker_ns, _ = network.add_host(worker_site, "worker")
        edge_ns, _ = network.add_host(edge_site, "edge")
        stack.worker(worker_ns)
        stack.edge(edge_ns, "--relay-upgrade-interval-s", "2")
        stack.wait_cloud_ready(edge_ns)
        first = stack.probe(edge_ns, "cloud")
        assert first["status"] == 200 and first["headers"]["x-tandem-path"] == "turn-udp"
        for direction in block:
            sh("ip", "netns", "exec", edge_site.router, "iptables", "-D", "FORWARD",
               "-p", "udp", *direction, "-j", "DROP")  # fmt: skip
        lifted_after = stack.wait_cloud_path(edge_ns, "direct")
        result = stack.probe(edge_ns, "cloud")
        print(f"\nturn-udp, then direct {lifted_after:.1f} s after the block was lifted")
        assert result["status"] == 200 and result["headers"]["x-tandem-path"] == "direct"
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
