"""Emulated networks for the NAT matrix: Linux network namespaces, veth pairs, a bridge
for the "internet", iptables NAT and filters on router namespaces.

Addresses: the internet is 203.0.113.0/24 (TEST-NET-3) on a bridge inside its own
namespace; each site is a router namespace (WAN on the bridge, LAN 10.N.0.1/24) with
hosts behind it. Everything lives in namespaces this module creates and deletes, named
with a random prefix so that runs never collide; traffic never leaves them.

Routers DROP unsolicited inbound packets in INPUT as well as FORWARD: otherwise an
early connectivity check creates a conntrack entry that collides with the outbound
mapping, MASQUERADE picks a new port, and an easy NAT behaves like a hard one.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Nat", "Network", "Site"]

INTERNET_PREFIX = "203.0.113"


def sh(*args: str) -> str:
    """Run a command; its stdout, or ``RuntimeError`` with its stderr."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Nat(StrEnum):
    NONE = "none"  # hosts share the router's LAN, no translation needed between them
    EASY = "easy"  # MASQUERADE: keeps the source port when it can (hole punching works)
    HARD = "hard"  # MASQUERADE --random-fully: a new port per destination (symmetric)


@dataclass
class Site:
    """A router namespace and the LAN behind it."""

    name: str
    router: str
    lan_prefix: str
    wan_ip: str
    hosts: dict[str, str] = field(default_factory=dict)  # host namespace -> LAN address


class Network:
    """Owns every namespace it creates; ``close`` deletes them all (idempotent)."""

    def __init__(self) -> None:
        self.tag = "td" + secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.internet = self._ns("inet")
        sh("ip", "netns", "exec", self.internet, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", self.internet, "ip", "link", "set", "br0", "up")
        self._next_wan = 2
        self._next_lan = 1

    def _ns(self, role: str) -> str:
        name = f"{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def _veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp_a, tmp_b = f"{self.tag}a{len(self.namespaces)}", f"{self.tag}b{len(self.namespaces)}"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_a, "netns", a)
        sh("ip", "link", "set", tmp_b, "netns", b)
        sh("ip", "netns", "exec", a, "ip", "link", "set", tmp_a, "name", a_if)
        sh("ip", "netns", "exec", b, "ip", "link", "set", tmp_b, "name", b_if)
        sh("ip", "netns", "exec", a, "ip", "link", "set", a_if, "up")
        sh("ip", "netns", "exec", b, "ip", "link", "set", b_if, "up")

    def _wan(self, ns: str) -> str:
        """Plug ``ns`` into the internet bridge; its public address."""
        ip = f"{INTERNET_PREFIX}.{self._next_wan}"
        self._next_wan += 1
        port = f"p{self._next_wan}"
        self._veth(ns, "wan", self.internet, port)
        sh("ip", "netns", "exec", self.internet, "ip", "link", "set", port, "master", "br0")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "wan")
        # A default route, so that sends to unroutable peers fail cleanly (coturn tears an
        # allocation down when a send errors).
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "dev", "wan")
        return ip

    def public_host(self, role: str) -> tuple[str, str]:
        """A host directly on the internet (signaling, coturn): (namespace, address)."""
        ns = self._ns(role)
        return ns, self._wan(ns)

    def second_address(self, ns: str) -> str:
        """Another public address on ``ns``'s WAN (a second STUN listener for netcheck)."""
        ip = f"{INTERNET_PREFIX}.{100 + self._next_wan}"
        self._next_wan += 1
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "wan")
        return ip

    def site(
        self,
        role: str,
        nat: Nat,
        *,
        udp_blocked: bool = False,
        tcp_only_to: tuple[str, int] | None = None,
        tcp_only_port: int | None = None,
    ) -> Site:
        """A router with NAT and filters; add hosts with ``add_host``.

        ``udp_blocked``: the LAN may not send UDP out (TURN must go over TCP).
        ``tcp_only_to``: the LAN may reach only this (address, TCP port) on the internet.
        ``tcp_only_port``: the LAN may reach only this TCP port, anywhere (443: HTTPS only).
        """
        router = self._ns(f"{role}-r")
        wan_ip = self._wan(router)
        lan_prefix = f"10.{self._next_lan}.0"
        self._next_lan += 1
        sh("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        ipt = ("ip", "netns", "exec", router, "iptables")
        sh(*ipt, "-P", "FORWARD", "DROP")
        sh(
            *ipt,
            "-A",
            "FORWARD",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        )
        if tcp_only_to is not None:
            addr, port = tcp_only_to
            sh(
                *ipt,
                "-A",
                "FORWARD",
                "-i",
                "lan",
                "-p",
                "tcp",
                "-d",
                addr,
                "--dport",
                str(port),
                "-j",
                "ACCEPT",
            )
        elif tcp_only_port is not None:
            sh(*ipt, "-A", "FORWARD", "-i", "lan", "-p", "tcp", "--dport", str(tcp_only_port),
               "-j", "ACCEPT")  # fmt: skip
        else:
            if udp_blocked:
                sh(*ipt, "-A", "FORWARD", "-i", "lan", "-p", "udp", "-j", "DROP")
            sh(*ipt, "-A", "FORWARD", "-i", "lan", "-j", "ACCEPT")
        sh(
            *ipt,
            "-A",
            "INPUT",
            "-i",
            "wan",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        )
        sh(*ipt, "-A", "INPUT", "-i", "wan", "-j", "DROP")
        if nat is not Nat.NONE:
            masquerade = ["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
            if nat is Nat.HARD:
                masquerade.append("--random-fully")
            sh(*ipt, *masquerade)
        site = Site(role, router, lan_prefix, wan_ip)
        self._lan_bridge(site)
        return site

    def _lan_bridge(self, site: Site) -> None:
        sh("ip", "netns", "exec", site.router, "ip", "link", "add", "lan", "type", "bridge")
        sh("ip", "netns", "exec", site.router, "ip", "link", "set", "lan", "up")
        sh(
            "ip",
            "netns",
            "exec",
            site.router,
            "ip",
            "addr",
            "add",
            f"{site.lan_prefix}.1/24",
            "dev",
            "lan",
        )

    def add_host(self, site: Site, role: str) -> tuple[str, str]:
        """A host on ``site``'s LAN: (namespace, address)."""
        ns = self._ns(role)
        ip = f"{site.lan_prefix}.{len(site.hosts) + 2}"
        port = f"h{len(site.hosts) + 2}"
        self._veth(ns, "eth0", site.router, port)
        sh("ip", "netns", "exec", site.router, "ip", "link", "set", port, "master", "lan")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "ip",
            "route",
            "add",
            "default",
            "via",
            f"{site.lan_prefix}.1",
        )
        site.hosts[ns] = ip
        return ns, ip

    def readdress(self, site: Site, ns: str) -> str:
        """Give host ``ns`` a new address on its LAN and take the old one away, as a DHCP
        renewal or a move to another network does; the new address."""
        old = site.hosts[ns]
        new = f"{site.lan_prefix}.{100 + len(site.hosts)}"
        ex = ("ip", "netns", "exec", ns)
        sh(*ex, "sysctl", "-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1")
        sh(*ex, "ip", "addr", "add", f"{new}/24", "dev", "eth0")
        sh(*ex, "ip", "addr", "del", f"{old}/24", "dev", "eth0")
        sh(*ex, "ip", "route", "replace", "default", "via", f"{site.lan_prefix}.1")
        site.hosts[ns] = new
        return new

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()
