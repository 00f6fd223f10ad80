"""The signaling settings added for secure defaults: each one validated at load time."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from signaling.auth import limit_key
from signaling.settings import SignalingSettings

A = SecretStr("a" * 32)
B = SecretStr("b" * 32)


def test_trusted_proxies_are_cidrs() -> None:
    settings = SignalingSettings(trusted_proxy="127.0.0.1, 10.0.0.0/8,::1")
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert SignalingSettings().trusted_proxies == ()
    with pytest.raises(ValidationError, match="CIDRs"):
        SignalingSettings(trusted_proxy="proxy.example.org")


def test_previous_secret_rules() -> None:
    assert SignalingSettings(secret=A, previous_secret=B).verification_secrets() == (
        "a" * 32,
        "b" * 32,
    )
    assert SignalingSettings(secret=A).verification_secrets() == ("a" * 32,)
    with pytest.raises(ValidationError, match="needs the current"):
        SignalingSettings(previous_secret=B)
    with pytest.raises(ValidationError, match="must differ"):
        SignalingSettings(secret=A, previous_secret=A)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        SignalingSettings(secret=A, previous_secret=SecretStr("short"))


@pytest.mark.parametrize(
    ("host", "metrics_host", "on_main"),
    [
        ("127.0.0.1", None, True),
        ("localhost", None, True),
        ("::1", None, True),
        ("0.0.0.0", None, False),
        ("signal.example.org", None, False),
        ("127.0.0.1", "127.0.0.1", False),  # a metrics listener of its own: only there
    ],
)
def test_metrics_stay_off_a_network_facing_listener(
    host: str, metrics_host: str | None, on_main: bool
) -> None:
    settings = SignalingSettings(host=host, metrics_host=metrics_host, metrics_port=9999)
    assert settings.metrics_on_main is on_main


def test_the_metrics_listener_is_not_the_main_one() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        SignalingSettings(host="127.0.0.1", port=8765, metrics_host="127.0.0.1", metrics_port=8765)


def test_new_limits_are_bounded() -> None:
    for field, value in (
        ("expiry_check_s", 0),
        ("takeover_probe_s", 0),
        ("takeover_probe_s", 61),
        ("max_model_name_chars", 0),
        ("max_model_name_chars", 10_000),
    ):
        with pytest.raises(ValidationError, match=field):
            SignalingSettings.model_validate({field: value})


def test_failures_from_one_ipv6_host_count_under_its_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2::1") != limit_key("2001:db8:1:3::1")
    assert limit_key("192.0.2.7") == "192.0.2.7"
