"""Edge settings: secure by default."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from edge_agent.settings import EdgeSettings
from shared.messages import MAX_STOP_CHARS, MAX_STOPS


def test_loopback_needs_no_key() -> None:
    assert EdgeSettings(host="127.0.0.1").api_key is None


def test_binding_beyond_localhost_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="api-key"):
        EdgeSettings(host="0.0.0.0")
    assert EdgeSettings(host="0.0.0.0", api_key=SecretStr("k" * 16)).host == "0.0.0.0"
    assert EdgeSettings(host="0.0.0.0", insecure_no_api_key=True).api_key is None


@pytest.mark.parametrize("key", ["", "short"])
def test_an_empty_or_short_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        EdgeSettings(host="0.0.0.0", api_key=SecretStr(key))


def test_the_key_never_appears_in_the_settings_repr() -> None:
    settings = EdgeSettings(api_key=SecretStr("k-very-secret-1234"), token=SecretStr("tok.en.x"))
    assert "k-very-secret-1234" not in repr(settings)
    assert "tok.en.x" not in repr(settings)


def test_the_per_stream_bound_is_a_validated_setting() -> None:
    assert EdgeSettings().max_queued_chunks == 64
    assert EdgeSettings(max_queued_chunks=1).max_queued_chunks == 1
    with pytest.raises(ValidationError, match="max_queued_chunks"):
        EdgeSettings(max_queued_chunks=0)


def test_browser_settings_are_validated() -> None:
    settings = EdgeSettings(allowed_host="Edge.LAN, proxy.example:443, [::1]:8080")
    assert settings.allowed_hosts == (("edge.lan", None), ("proxy.example", 443), ("::1", 8080))
    origins = EdgeSettings(cors_origin="http://App.example:3000/, https://ui.example:443")
    assert origins.cors_origins == {"http://app.example:3000", "https://ui.example"}
    for bad in ("http://edge.lan", "edge.lan:port", "*.lan", "a/b"):
        with pytest.raises(ValidationError, match="allowed-host"):
            EdgeSettings(allowed_host=bad)
    for bad in ("*", "null", "app.example", "ftp://app.example", "http://app.example/ui"):
        with pytest.raises(ValidationError, match="cors-origin"):
            EdgeSettings(cors_origin=bad)


def test_stop_limits_stay_within_what_a_worker_accepts() -> None:
    EdgeSettings(max_stop_sequences=MAX_STOPS, max_stop_chars=MAX_STOP_CHARS)
    with pytest.raises(ValidationError):
        EdgeSettings(max_stop_sequences=MAX_STOPS + 1)
    with pytest.raises(ValidationError):
        EdgeSettings(max_stop_chars=MAX_STOP_CHARS + 1)
