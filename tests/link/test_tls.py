"""``link.tls``: which signaling URLs a peer may use, and how it verifies them."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from link import SignalingClient
from link.tls import InsecureSignaling, client_ssl_context, is_loopback_host
from tests.support.tls import CertAuthority


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LocalHost"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "192.0.2.1", "signal.example.com", "0.0.0.0", ""])
def test_other_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8765/v1/signal", "ws://localhost/v1/signal"])
def test_plaintext_on_loopback_needs_no_flag(url: str) -> None:
    assert client_ssl_context(url) is None


@pytest.mark.parametrize(
    "url", ["ws://203.0.113.2:8765/v1/signal", "http://signal.example.com/v1/signal"]
)
def test_plaintext_to_another_host_is_refused_naming_the_flag(url: str) -> None:
    with pytest.raises(InsecureSignaling, match="--insecure-signaling"):
        client_ssl_context(url)
    with pytest.raises(InsecureSignaling, match="--insecure-signaling"):
        SignalingClient(url, "token")  # at construction: a startup error, not a later one
    assert client_ssl_context(url, insecure=True) is None


def test_wss_verifies_certificate_and_name() -> None:
    context = client_ssl_context("wss://signal.example.com/v1/signal")
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_ca_file_is_the_only_trust(tmp_path: Path) -> None:
    ca = CertAuthority.make(tmp_path)
    context = client_ssl_context("wss://127.0.0.1/v1/signal", ca_file=ca.ca_file)
    assert context is not None
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", ca.name),),)]


def test_unusable_ca_file_or_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InsecureSignaling, match="--ca-file"):
        client_ssl_context("wss://h/v1/signal", ca_file=tmp_path / "missing.pem")
    with pytest.raises(InsecureSignaling, match="--ca-file"):  # TLS settings on plaintext
        client_ssl_context("ws://127.0.0.1/v1/signal", ca_file=tmp_path / "ca.pem")
    with pytest.raises(InsecureSignaling, match="wss://"):
        client_ssl_context("ftp://signal.example.com/")
