"""The handshake helpers: explicit ICE config, host-candidate choice."""

from __future__ import annotations

from link import IcePolicy, create_offer, parse_addresses, rtc_configuration
from link.rtc import turn_transport_of
from shared.messages import IceServer


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
    assert turn_transport_of("turns:t:5349") == "tcp"


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
