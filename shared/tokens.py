"""Signed, expiring peer tokens (JWT, HS256, shared secret).

A token says who a peer is (``peer_id``), what it may do (``role``) and until when.
Time is an argument so that tests can use a fake clock and so this module stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from shared.errors import TokenExpired, TokenInvalid
from shared.messages import Role

__all__ = ["MIN_SECRET_BYTES", "PeerClaims", "mint_token", "verify_token"]

_ISSUER = "tandem"
_ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class PeerClaims:
    """What a verified token asserts."""

    peer_id: str
    role: Role
    expires_at: int


def _check_secret(secret: str) -> bytes:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the shared secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def mint_token(secret: str, *, role: Role, peer_id: str, ttl_s: int, now: float) -> str:
    """Sign a token for ``peer_id`` acting as ``role``, valid for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if not peer_id or len(peer_id) > 128:
        raise ValueError("peer_id must be 1..128 characters")
    claims = {
        "iss": _ISSUER,
        "sub": peer_id,
        "role": role.value,
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    return jwt.encode(claims, _check_secret(secret), algorithm=_ALGORITHM)


def verify_token(secret: str, token: str, *, now: float, role: Role | None = None) -> PeerClaims:
    """Check signature, issuer, expiry and (if given) role; raise an ``AuthError`` if bad."""
    try:
        claims = jwt.decode(
            token,
            _check_secret(secret),
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid("token is malformed or its signature is wrong") from exc
    raw_role = claims.get("role")
    if not isinstance(raw_role, str):
        raise TokenInvalid("token has no role")
    try:
        claims_role = Role(raw_role)
        expires_at = int(claims["exp"])
        peer_id = str(claims["sub"])
    except (ValueError, TypeError) as exc:
        raise TokenInvalid("token claims are malformed") from exc
    if expires_at <= now:
        raise TokenExpired("token has expired")
    if role is not None and claims_role is not role:
        raise TokenInvalid(f"token is for role {claims_role.value}, not {role.value}")
    return PeerClaims(peer_id=peer_id, role=claims_role, expires_at=expires_at)
