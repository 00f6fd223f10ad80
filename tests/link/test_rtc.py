"""The handshake helpers: explicit ICE config, host-candidate choice."""

from __future__ import annotations

from link import create_offer, parse_addresses, rtc_configuration
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


async def test_offer_gathers_only_the_chosen_host_addresses() -> None:
    offer = await create_offer((), host_addresses=("127.0.0.1",))
    try:
        candidates = [line for line in offer.sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates, offer.sdp
        assert all(" 127.0.0.1 " in line for line in candidates), candidates
    finally:
        await offer.aclose()
