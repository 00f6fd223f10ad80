"""The handshake helpers (explicit ICE config, host-candidate choice) and which path a
connection took: real aiortc pairs on loopback, one of them through a real coturn."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from link import (
    DataChannelLink,
    IcePolicy,
    PathKind,
    accept_offer,
    create_offer,
    parse_addresses,
    rtc_configuration,
)
from link.rtc import _warn_unknown_path, allocation_transport, path_of, turn_transport_of
from shared.messages import IceServer, Ping, Pong
from tests.support.coturn import coturn_on_loopback, needs_coturn
from tests.support.rtc import FRAME, open_pair


def test_rtc_configuration_is_always_an_explicit_list() -> None:
    assert rtc_configuration(()).iceServers == []
    config = rtc_configuration(
        (IceServer(urls=("turn:t.example:3478",), username="u", credential="p"),)
    )
    assert config.iceServers is not None
    assert config.iceServers[0].urls == ["turn:t.example:3478"]
    assert config.iceServers[0].username == "u"


def test_parse_addresses() -> None:
    assert parse_addresses(None) is None
    assert parse_addresses("  ") is None
    assert parse_addresses("127.0.0.1, ::1") == ("127.0.0.1", "::1")
    assert parse_addresses("none") == ()


async def test_offer_gathers_only_the_chosen_host_addresses() -> None:
    offer = await create_offer((), IcePolicy(host_addresses=("127.0.0.1",)))
    try:
        candidates = [line for line in offer.sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates, offer.sdp
        assert all(" 127.0.0.1 " in line for line in candidates), candidates
    finally:
        await offer.aclose()


def test_turn_transport_of() -> None:
    assert turn_transport_of("turn:t:3478") == "udp"
    assert turn_transport_of("turn:t:3478?transport=tcp") == "tcp"
    assert turn_transport_of("turns:t:5349") == "tls"
    assert turn_transport_of("turns:t:443?transport=tcp") == "tls"
    assert turn_transport_of("turns:t:443?transport=udp") == "dtls"  # aiortc: unsupported


def test_the_preferred_turn_transport_goes_first() -> None:
    turn = IceServer(
        urls=("turn:t:3478?transport=udp", "turn:t:3478?transport=tcp"),
        username="u",
        credential="p",
    )
    tcp = rtc_configuration((turn,), turn_transport="tcp").iceServers
    udp = rtc_configuration((turn,), turn_transport="udp").iceServers
    assert tcp is not None and tcp[0].urls[0].endswith("transport=tcp")
    assert udp is not None and udp[0].urls[0].endswith("transport=udp")


def test_direct_only_drops_relay_candidates_and_turn_servers() -> None:
    from link.rtc import _stun_only, without_relay_candidates
    from shared.messages import IceServer

    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 UDP 2130706431 10.0.0.2 5000 typ host",
            "a=candidate:2 1 UDP 1694498815 203.0.113.7 6000 typ srflx raddr 10.0.0.2 rport 5000",
            "a=candidate:3 1 UDP 16777215 198.51.100.1 7000 typ relay raddr 203.0.113.7 rport 6000",
            "a=end-of-candidates",
        ]
    )
    kept = without_relay_candidates(sdp)
    assert "typ relay" not in kept and "typ srflx" in kept and "typ host" in kept
    servers = [
        IceServer(
            urls=("stun:203.0.113.1:3478", "turn:203.0.113.1:3478"), username="u", credential="c"
        ),
        IceServer(urls=("turns:203.0.113.1:5349",), username="u", credential="c"),
    ]
    assert _stun_only(servers) == [IceServer(urls=("stun:203.0.113.1:3478",))]


# ------------------------------------------------------------------ which path, for real


async def test_a_loopback_pair_reports_direct() -> None:
    edge, worker = await open_pair()
    try:
        assert edge.path is PathKind.DIRECT
        assert worker.path is PathKind.DIRECT
    finally:
        await edge.aclose()
        await worker.aclose()


@needs_coturn
@pytest.mark.parametrize(
    ("transport", "expected"), [("udp", PathKind.TURN_UDP), ("tcp", PathKind.TURN_TCP)]
)
async def test_a_pair_forced_through_turn_reports_turn(
    tmp_path: Path, transport: str, expected: PathKind
) -> None:
    # No host candidates on either side: the only pairs are TURN-relayed ones.
    relay_only = IcePolicy(host_addresses=(), turn_transport=transport)
    async with coturn_on_loopback(tmp_path) as turn:
        offer = await create_offer(turn.ice_servers("edge", transport=transport), relay_only)
        assert " typ relay" in offer.sdp and " typ host" not in offer.sdp
        answer = await accept_offer(
            offer.sdp,
            turn.ice_servers("worker", transport=transport),
            max_frame_bytes=FRAME,
            policy=relay_only,
        )
        links: list[DataChannelLink] = []
        try:
            links.append(await offer.complete(answer.sdp, timeout_s=30, max_frame_bytes=FRAME))
            links.append(await answer.wait_link(30))
            edge, worker = links
            assert edge.path is expected
            assert worker.path is expected
            await edge.send(Ping(nonce=7))  # and frames cross coturn
            assert await worker.recv() == Ping(nonce=7)
            await worker.send(Pong(nonce=7))
            assert await edge.recv() == Pong(nonce=7)
        finally:
            for link in links:
                await link.aclose()
            await offer.aclose()
            await answer.pc.close()


def test_a_pair_that_cannot_be_read_is_unknown_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _warn_unknown_path.cache_clear()
    with caplog.at_level(logging.WARNING, logger="link.rtc"):
        assert path_of(object(), "udp") is PathKind.UNKNOWN  # attributes moved: not "direct"
        assert path_of(object(), "udp") is PathKind.UNKNOWN
    warnings = [r for r in caplog.records if "unknown" in r.getMessage()]
    assert len(warnings) == 1


def test_the_allocation_transport_is_the_first_usable_turn_url() -> None:
    def config(*urls: str) -> IceServer:
        return IceServer(urls=urls, username="u", credential="p")

    assert allocation_transport(rtc_configuration(())) is None
    assert allocation_transport(rtc_configuration((IceServer(urls=("stun:s:3478",)),))) is None
    udp_tcp = config("turn:t:3478?transport=udp", "turn:t:3478?transport=tcp")
    assert allocation_transport(rtc_configuration((udp_tcp,), turn_transport="udp")) == "udp"
    assert allocation_transport(rtc_configuration((udp_tcp,), turn_transport="tcp")) == "tcp"
    assert allocation_transport(rtc_configuration((config("turns:t:5349"),))) == "tls"
    tls_last = config("turn:t:3478?transport=tcp", "turns:t:443?transport=tcp")
    assert allocation_transport(rtc_configuration((tls_last,), turn_transport="tls")) == "tls"
    skipped = config("turns:t:5349?transport=udp", "turn:t:3478")  # aiortc skips the first
    assert allocation_transport(rtc_configuration((skipped,))) == "udp"
