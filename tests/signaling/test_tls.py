"""Signaling's TLS and relay-buffer settings: refused early, with a clear line."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from signaling.__main__ import main
from signaling.settings import SignalingSettings
from signaling.tls import is_loopback, server_ssl_context
from tests.signaling.support import SECRET
from tests.support.tls import CertAuthority


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TANDEM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TANDEM_SECRET", SECRET)


def test_no_tls_without_a_certificate() -> None:
    assert server_ssl_context(SignalingSettings(secret=SecretStr(SECRET))) is None


def test_modern_tls_only(tmp_path: Path) -> None:
    cert = CertAuthority.make(tmp_path).issue()
    strict = server_ssl_context(
        SignalingSettings(secret=SecretStr(SECRET), tls_cert=cert.cert, tls_key=cert.key)
    )
    assert strict is not None and strict.minimum_version is ssl.TLSVersion.TLSv1_3
    relaxed = server_ssl_context(
        SignalingSettings(
            secret=SecretStr(SECRET), tls_cert=cert.cert, tls_key=cert.key, tls_min_version="1.2"
        )
    )
    assert relaxed is not None and relaxed.minimum_version is ssl.TLSVersion.TLSv1_2
    suites = {c["name"] for c in relaxed.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert suites and all("ECDHE" in s and ("GCM" in s or "CHACHA" in s) for s in suites)


def test_half_a_tls_pair_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_env: None
) -> None:
    with pytest.raises(ValidationError, match="--tls-key"):
        SignalingSettings(secret=SecretStr(SECRET), tls_cert=tmp_path / "c.pem")
    assert main(["serve", "--tls-cert", str(tmp_path / "c.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tls-cert and --tls-key go together" in err


def test_an_unloadable_certificate_fails_at_startup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_env: None
) -> None:
    ca = CertAuthority.make(tmp_path)
    cert, other = ca.issue(), ca.issue()
    args = ["serve", "--port", "0", "--tls-cert", str(cert.cert), "--tls-key", str(other.key)]
    assert main(args) == 2  # a key that is not the certificate's
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(cert.cert) in err
    assert other.key.read_text().splitlines()[1] not in err  # never the key itself


def test_the_relay_buffer_holds_at_least_one_frame() -> None:
    with pytest.raises(ValidationError, match="--relay-buffer-bytes"):
        SignalingSettings(relay_buffer_bytes=32768, max_frame_bytes=65536)
    with pytest.raises(ValidationError):
        SignalingSettings(relay_buffer_bytes=1024)


@pytest.mark.parametrize(
    ("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("0.0.0.0", False)]
)
def test_loopback_listen_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
