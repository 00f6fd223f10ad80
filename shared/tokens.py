"""Signed, expiring peer tokens (JWT, HS256, shared secret), with key ids for rotation.

A token says who a peer is (``peer_id``), what it may do (``role``) and until when.
Time is an argument so that tests can use a fake clock and so this module stays pure.

Rotating the secret needs an overlap: the server accepts a *current* and a *previous*
secret while peers pick up tokens signed with the new one. Each token carries a key id
(the JWT header ``kid``) so that the verifier picks the secret that signed it instead of
trying them all. The key id is a short hash of the secret, never the secret: anyone who
holds a token can read its header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import TokenExpired, TokenInvalid, UnknownSigningKey
from shared.messages import Role

__all__ = ["MIN_SECRET_BYTES", "PeerClaims", "key_id", "mint_token", "verify_token"]

_ISSUER = "tandem"
# PyJWT is imported where a token is minted or verified, not at the top: it pulls in
# cryptography.x509 (tens of ms), which a peer that only presents its token never needs,
# and an edge's start-up is on the path to its first answer (docs/operations.md).
_ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
_KID_DOMAIN = b"tandem-token-kid:"  # so the key id is no hash of the secret used elsewhere


@dataclass(frozen=True)
class PeerClaims:
    """What a verified token asserts; ``key_id`` names the secret that signed it."""

    peer_id: str
    role: Role
    expires_at: int
    key_id: str = ""


def _check_secret(secret: str) -> bytes:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the shared secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def key_id(secret: str) -> str:
    """The public name of ``secret``: 16 hex digits of a domain-separated SHA-256.

    Safe to publish: with a secret of at least ``MIN_SECRET_BYTES`` random bytes, the
    hash reveals nothing usable about it.
    """
    return hashlib.sha256(_KID_DOMAIN + _check_secret(secret)).hexdigest()[:16]


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
    import jwt  # on use: see _ISSUER

    return jwt.encode(
        claims, _check_secret(secret), algorithm=_ALGORITHM, headers={"kid": key_id(secret)}
    )


def _candidates(secrets: Sequence[str], token: str) -> list[str]:
    """The secrets to try, in order: the one the token's ``kid`` names, or (a token
    minted before key ids) every secret, current first."""
    import jwt  # on use: see _ISSUER

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise TokenInvalid("token is malformed or its signature is wrong") from exc
    if kid is None:
        return list(secrets)
    named = [s for s in secrets if isinstance(kid, str) and key_id(s) == kid]
    if not named:
        # kid is attacker-controlled text: name it only if it looks like one of ours.
        shown = kid if isinstance(kid, str) and len(kid) <= 32 and kid.isalnum() else "?"
        raise UnknownSigningKey(
            f"token was signed with a secret this server does not hold (key id {shown}); "
            "mint a new token"
        )
    return named


def verify_token(
    secrets: str | Sequence[str], token: str, *, now: float, role: Role | None = None
) -> PeerClaims:
    """Check signature, issuer, expiry and (if given) role; raise an ``AuthError`` if bad.

    ``secrets`` is the secret, or the secrets accepted now (current first, then the
    previous one during a rotation).
    """
    keyring = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not keyring:
        raise ValueError("no secret to verify tokens with")
    if not token.isascii():  # a JWT is base64url and dots; anything else is not one
        raise TokenInvalid("token is malformed or its signature is wrong")
    import jwt  # on use: see _ISSUER

    claims: dict[str, Any] | None = None
    signed_by = ""
    for secret in _candidates(keyring, token):
        try:
            claims = jwt.decode(
                token,
                _check_secret(secret),
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["exp", "sub", "iss"],
                },
            )
        except jwt.PyJWTError:
            continue
        signed_by = key_id(secret)
        break
    if claims is None:
        raise TokenInvalid("token is malformed or its signature is wrong")
    return _claims(claims, signed_by, now=now, role=role)


def _claims(claims: dict[str, Any], signed_by: str, *, now: float, role: Role | None) -> PeerClaims:
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
    return PeerClaims(peer_id=peer_id, role=claims_role, expires_at=expires_at, key_id=signed_by)
