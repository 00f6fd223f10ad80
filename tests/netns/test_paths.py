"""The NAT matrix: every scenario connects, on the best path it allows, for real.

Each test builds its own emulated internet (network namespaces, veth, a bridge,
iptables NAT on router namespaces), runs coturn and signaling on a public host, a
worker and an edge behind their routers, and asserts the path the edge reports for a
real escalated completion. Everything is torn down even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns.stack import SIGNALING_PORT, NetStack
from tests.netns.topology import Nat, Network, sh

pytestmark = [pytest.mark.netns, pytest.mark.e2e]

HTTPS_PORT = 443


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
    edge_https_only: bool = False
    """Only TCP 443 passes: signaling and TURN over TLS both listen there."""
    edge_args: tuple[str, ...] = ()


SCENARIOS = {
    "1-same-lan": Scenario(Nat.EASY, Nat.EASY, "direct", same_lan=True),
    "2-easy-nats": Scenario(Nat.EASY, Nat.EASY, "direct"),
    "3-hard-nats": Scenario(Nat.HARD, Nat.HARD, "turn-udp"),
    "4-udp-blocked": Scenario(Nat.EASY, Nat.EASY, "turn-tcp", edge_udp_blocked=True),
    "5-tcp-to-signaling-only": Scenario(
        Nat.EASY, Nat.HARD, "relay", edge_tcp_only_to_signaling=True
    ),
    "6-https-only": Scenario(Nat.EASY, Nat.EASY, "turn-tls", edge_https_only=True),
}


TIMINGS: dict[str, tuple[float, float]] = {}
"""Per scenario: (first escalated token, best path reached), seconds after the edge
started. Printed, never asserted: they say what a user waits, on this machine."""


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
        if scenario.edge_https_only:
            # coturn's TLS on svc_ip:443, signaling on a third address's 443.
            stack.coturn(svc_ns, svc_ip, svc_ip2, tls_port=HTTPS_PORT)
            stack.signaling(
                svc_ns,
                svc_ip,
                svc_ip2,
                host=network.second_address(svc_ns),
                port=HTTPS_PORT,
                turns_port=HTTPS_PORT,
            )
        else:
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
                tcp_only_port=HTTPS_PORT if scenario.edge_https_only else None,
            )
        worker_ns, _ = network.add_host(worker_site, "worker")
        edge_ns, _ = network.add_host(edge_site, "edge")
        stack.worker(worker_ns)
        # What a user waits for from the edge's start: the worker is already serving.
        stack.wait_worker_ready(worker_ns)
        # The edge serves over the relay as soon as it is linked and upgrades beside it;
        # upgrades retried every 2 s (doubling on failure) instead of every 5 s. A client
        # started with it asks as soon as its API answers (no probe process in between).
        stack.edge(edge_ns, "--relay-upgrade-interval-s", "2", *scenario.edge_args)
        first = stack.probe(edge_ns, "cloud", "--first")
        api_up = first["api_up_at"]
        assert first["status"] == 200
        assert first["headers"]["x-tandem-served-by"] == "cloud"
        # The best path: WebRTC (direct, TURN) where the network allows it, reached by
        # itself; a TURN pair that won the race is lifted to direct where direct works.
        stack.wait_cloud_path(edge_ns, scenario.expected, timeout_s=150)
        best_after = time.time() - stack.started["edge"]
        result = stack.probe(edge_ns, "cloud")
        TIMINGS[name] = (first["first_token_at"] - stack.started["edge"], best_after)
        print(
            f"\n{name}: first answer over {first['headers'].get('x-tandem-path')}, its first "
            f"token {TIMINGS[name][0]:.1f} s after the edge process started "
            f"({first['first_token_at'] - api_up:.1f} s after its API first answered); "
            f"on {scenario.expected} {best_after:.1f} s after the start"
        )
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
        # Relay first, then the best path the block allows: TURN.
        stack.wait_cloud_path(edge_ns, "turn-udp", timeout_s=150)
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


def test_the_first_answer_comes_over_the_relay_and_later_ones_direct(
    network: Network, tmp_path: Path
) -> None:
    """Relay first: the edge's network passes only TCP to signaling when it starts, so no
    WebRTC path can exist, yet the first escalated request is answered, over the relay.
    Once the network lets the rest through, the edge reaches a direct path by itself and
    later requests take it."""
    stack = NetStack(tmp_path)
    try:
        svc_ns, svc_ip = network.public_host("svc")
        svc_ip2 = network.second_address(svc_ns)
        stack.coturn(svc_ns, svc_ip, svc_ip2)
        stack.signaling(svc_ns, svc_ip, svc_ip2)
        worker_site = network.site("wsite", Nat.EASY)
        edge_site = network.site("esite", Nat.EASY, tcp_only_to=(svc_ip, SIGNALING_PORT))
        worker_ns, _ = network.add_host(worker_site, "worker")
        edge_ns, _ = network.add_host(edge_site, "edge")
        stack.worker(worker_ns)
        stack.edge(edge_ns, "--relay-upgrade-interval-s", "2")
        stack.wait_cloud_ready(edge_ns)
        first = stack.probe(edge_ns, "cloud")
        assert first["status"] == 200 and first["headers"]["x-tandem-served-by"] == "cloud"
        assert first["headers"]["x-tandem-path"] == "relay"
        after = first["first_token_at"] - stack.started["edge"]
        print(f"\nfirst token over the relay {after:.1f} s after the edge started")
        # The network opens up: the edge's LAN may now send anything out.
        sh("ip", "netns", "exec", edge_site.router, "iptables", "-I", "FORWARD", "1",
           "-i", "lan", "-j", "ACCEPT")  # fmt: skip
        opened = time.time()
        stack.wait_cloud_path(edge_ns, "direct", timeout_s=180)
        print(f"direct {time.time() - opened:.1f} s after the network opened")
        later = stack.probe(edge_ns, "cloud")
        assert later["status"] == 200 and later["headers"]["x-tandem-path"] == "direct"
        assert later["usage"]["completion_tokens"] > 0
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()


def test_the_link_recovers_when_the_edges_address_changes(network: Network, tmp_path: Path) -> None:
    """Easy NATs, the edge on a direct path. Mid-stream the edge's host gets a new address
    and loses the old one (a DHCP renewal, Wi-Fi to another network): the old path dies
    with it. The stream under way fails over and completes; the edge links again by
    itself, from the new address, and /healthz shows its new path."""
    stack = NetStack(tmp_path)
    try:
        svc_ns, svc_ip = network.public_host("svc")
        svc_ip2 = network.second_address(svc_ns)
        stack.coturn(svc_ns, svc_ip, svc_ip2)
        stack.signaling(svc_ns, svc_ip, svc_ip2)
        worker_site = network.site("wsite", Nat.EASY)
        edge_site = network.site("esite", Nat.EASY)
        worker_ns, _ = network.add_host(worker_site, "worker")
        edge_ns, _ = network.add_host(edge_site, "edge")
        stack.worker(worker_ns)
        stack.edge(edge_ns, "--relay-upgrade-interval-s", "2")
        stack.wait_cloud_path(edge_ns, "direct", timeout_s=150)
        argv = ["-m", "tests.netns.probe", "http://127.0.0.1:8080", "cloud"]
        streaming = subprocess.Popen(
            ["ip", "netns", "exec", edge_ns, sys.executable, *argv,
             "--max-tokens", "400", "--announce"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert streaming.stderr is not None
            assert streaming.stderr.readline().strip() == "first-token", "no stream under way"
            new_ip = network.readdress(edge_site, edge_ns)
            moved = time.time()
            out, err = streaming.communicate(timeout=300)
        finally:
            if streaming.poll() is None:
                streaming.kill()
                streaming.wait()
        result = json.loads(out)
        # The stream under way moved on (to another link, or to the local model) and ended.
        assert result["status"] == 200, err
        assert result["failovers"], "the stream was cut by the address change: it must fail over"
        assert result["usage"]["completion_tokens"] > 0 and str(result["text"]).strip()
        stack.wait_cloud_path(edge_ns, "direct", timeout_s=180)
        print(
            f"\naddress changed to {new_ip}: the stream resumed "
            f"{result['failover_at'][0] - moved:.1f} s later ({result['failovers'][0]}); "
            f"the edge on direct again (checked after the stream ended)"
        )
        later = stack.probe(edge_ns, "cloud")
        assert later["status"] == 200 and later["headers"]["x-tandem-path"] == "direct"
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()
