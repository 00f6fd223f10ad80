"""Peer tokens: mint, verify, and every way a token is refused (fake clock throughout)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from shared import (
    MIN_SECRET_BYTES,
    AuthError,
    PeerClaims,
    Role,
    TokenExpired,
    TokenInvalid,
    mint_token,
    verify_token,
)
from shared.errors import UnknownSigningKey
from shared.tokens import key_id

SECRET = "s3cret-for-tests-0123456789abcdef"  # 33 bytes
OTHER_SECRET = "another-secret-0123456789abcdefgh"
NOW = 1_732_870_000.0


def token(
    role: Role = Role.EDGE, peer_id: str = "edge-1", ttl_s: int = 60, now: float = NOW
) -> str:
    return mint_token(SECRET, role=role, peer_id=peer_id, ttl_s=ttl_s, now=now)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip() -> None:
    claims = verify_token(SECRET, token(Role.WORKER, "worker-gpu-3"), now=NOW + 1, role=Role.WORKER)
    assert claims == PeerClaims(
        peer_id="worker-gpu-3", role=Role.WORKER, expires_at=int(NOW) + 60, key_id=key_id(SECRET)
    )


def test_role_is_optional_when_verifying() -> None:
    assert verify_token(SECRET, token(Role.EDGE), now=NOW).role is Role.EDGE


def test_valid_until_the_last_second() -> None:
    verify_token(SECRET, token(ttl_s=60), now=NOW + 59.9)
    with pytest.raises(TokenExpired):
        verify_token(SECRET, token(ttl_s=60), now=NOW + 60)


def test_expired() -> None:
    with pytest.raises(TokenExpired):
        verify_token(SECRET, token(ttl_s=60), now=NOW + 3600)


def test_expired_is_an_auth_error() -> None:
    assert issubclass(TokenExpired, AuthError)
    assert issubclass(TokenInvalid, AuthError)


def test_wrong_role() -> None:
    with pytest.raises(TokenInvalid, match="role"):
        verify_token(SECRET, token(Role.EDGE), now=NOW, role=Role.WORKER)


def test_forged_signature() -> None:
    forged = mint_token(OTHER_SECRET, role=Role.WORKER, peer_id="evil", ttl_s=60, now=NOW)
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, forged, now=NOW)


def test_tampered_payload() -> None:
    header, payload, signature = token(Role.EDGE).split(".")
    claims = json.loads(_b64decode(payload))
    claims["role"] = "worker"
    tampered = ".".join([header, _b64encode(json.dumps(claims).encode()), signature])
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, tampered, now=NOW, role=Role.WORKER)


def test_tampered_signature() -> None:
    header, payload, signature = token().split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, f"{header}.{payload}.{flipped}", now=NOW)


def test_unsigned_token() -> None:
    claims = {"iss": "tandem", "sub": "edge-1", "role": "edge", "exp": int(NOW) + 60}
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, unsigned, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "someone-else", "sub": "edge-1", "role": "edge", "exp": int(NOW) + 60},
        {"sub": "edge-1", "role": "edge", "exp": int(NOW) + 60},  # no issuer
        {"iss": "tandem", "role": "edge", "exp": int(NOW) + 60},  # no subject
        {"iss": "tandem", "sub": "edge-1", "role": "edge"},  # no expiry
        {"iss": "tandem", "sub": "edge-1", "exp": int(NOW) + 60},  # no role
        {"iss": "tandem", "sub": "edge-1", "role": "admin", "exp": int(NOW) + 60},
        {"iss": "tandem", "sub": "edge-1", "role": "edge", "exp": "tomorrow"},
    ],
)
def test_well_signed_but_malformed_claims(claims: dict[str, object]) -> None:
    signed = jwt.encode(claims, SECRET.encode(), algorithm="HS256")
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, signed, now=NOW)


@pytest.mark.parametrize(
    "garbage", ["", "garbage", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9.e30", "🔑"]
)
def test_garbage_string(garbage: str) -> None:
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, garbage, now=NOW)


def test_short_secret() -> None:
    short = "x" * (MIN_SECRET_BYTES - 1)
    with pytest.raises(ValueError):
        mint_token(short, role=Role.EDGE, peer_id="edge-1", ttl_s=60, now=NOW)
    with pytest.raises(ValueError):
        verify_token(short, token(), now=NOW)


def test_secret_length_counts_bytes() -> None:
    mint_token("x" * MIN_SECRET_BYTES, role=Role.EDGE, peer_id="e", ttl_s=1, now=NOW)
    mint_token("é" * (MIN_SECRET_BYTES // 2), role=Role.EDGE, peer_id="e", ttl_s=1, now=NOW)


@pytest.mark.parametrize(
    ("peer_id", "ttl_s"), [("", 60), ("p" * 129, 60), ("edge-1", 0), ("edge-1", -5)]
)
def test_mint_refuses_bad_arguments(peer_id: str, ttl_s: int) -> None:
    with pytest.raises(ValueError):
        mint_token(SECRET, role=Role.EDGE, peer_id=peer_id, ttl_s=ttl_s, now=NOW)


def test_token_does_not_contain_the_secret() -> None:
    minted = token()
    assert SECRET not in minted
    assert SECRET.encode() not in b"".join(_b64decode(p) for p in minted.split(".")[:2])


def test_a_token_names_its_secret_by_a_key_id_that_is_not_the_secret() -> None:
    header = jwt.get_unverified_header(token())
    assert header["kid"] == key_id(SECRET) != key_id(OTHER_SECRET)
    assert len(header["kid"]) == 16 and SECRET not in json.dumps(header)


def test_during_a_rotation_both_secrets_verify_and_report_which_signed() -> None:
    old = mint_token(OTHER_SECRET, role=Role.EDGE, peer_id="e1", ttl_s=60, now=NOW)
    keyring = (SECRET, OTHER_SECRET)
    assert verify_token(keyring, old, now=NOW).key_id == key_id(OTHER_SECRET)
    assert verify_token(keyring, token(), now=NOW).key_id == key_id(SECRET)


def test_a_token_without_key_id_tries_current_then_previous() -> None:
    claims = {"iss": "tandem", "sub": "e1", "role": "edge", "exp": int(NOW) + 60}
    legacy = jwt.encode(claims, OTHER_SECRET.encode(), algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(legacy)
    assert verify_token((SECRET, OTHER_SECRET), legacy, now=NOW).peer_id == "e1"
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, legacy, now=NOW)


def test_a_key_id_this_server_does_not_hold_is_refused_by_name() -> None:
    retired = mint_token(OTHER_SECRET, role=Role.EDGE, peer_id="e1", ttl_s=60, now=NOW)
    with pytest.raises(UnknownSigningKey, match=key_id(OTHER_SECRET)):
        verify_token(SECRET, retired, now=NOW)


def test_a_non_ascii_token_is_invalid_not_a_crash() -> None:
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, "\udcff\udcfe.x.y", now=NOW)
    with pytest.raises(TokenInvalid):
        verify_token(SECRET, "caf\u00e9.x.y", now=NOW)
