"""The protocol's error tree.

Every process maps foreign errors (msgpack, PyJWT, pydantic) to these at the boundary,
so callers above the codec or token layer only ever catch Tandem types::

    TandemError
    ├── ProtocolError            peer sent what we refuse -> close that session only
    │   ├── FrameTooLarge
    │   ├── DecodeError
    │   ├── UnknownMessage
    │   └── VersionMismatch
    └── AuthError
        ├── TokenExpired
        └── TokenInvalid
            └── UnknownSigningKey
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "DecodeError",
    "FrameTooLarge",
    "ProtocolError",
    "TandemError",
    "TokenExpired",
    "TokenInvalid",
    "UnknownMessage",
    "UnknownSigningKey",
    "VersionMismatch",
]


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""


class ProtocolError(TandemError):
    """A peer sent bytes or a message we refuse; only that peer's session is closed."""


class FrameTooLarge(ProtocolError):
    """A frame (or a reassembled message) exceeds the configured byte limit."""


class DecodeError(ProtocolError):
    """The bytes are not a well-formed frame, or its fields fail validation."""


class UnknownMessage(ProtocolError):
    """The frame's type tag names no message this protocol version knows."""


class VersionMismatch(ProtocolError):
    """The peer speaks a protocol version we cannot talk to."""


class AuthError(TandemError):
    """A peer token was refused."""


class TokenExpired(AuthError):
    """The token's signature is good but its expiry has passed."""


class TokenInvalid(AuthError):
    """The token is malformed, forged, or names the wrong role."""


class UnknownSigningKey(TokenInvalid):
    """The token names a key id (``kid``) this server holds no secret for: it was signed
    with a secret that has been rotated out, or with another deployment's."""
