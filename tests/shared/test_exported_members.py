"""``shared`` is the protocol's whole public surface: pin it so that changes are deliberate."""

from __future__ import annotations

import shared

EXPORTED = [
    "DEFAULT_MAX_FRAME_BYTES",
    "ENV_PREFIX",
    "MESSAGE_TYPES",
    "MIN_SECRET_BYTES",
    "PROTOCOL_VERSION",
    "Answer",
    "AuthError",
    "Cancel",
    "ChatMessage",
    "DecodeError",
    "Drain",
    "ErrorCode",
    "Fragment",
    "FrameTooLarge",
    "GenerateRequest",
    "IceServer",
    "LoadReport",
    "Message",
    "Offer",
    "PeerClaims",
    "PeerSettings",
    "Ping",
    "Pong",
    "ProtocolError",
    "Reassembler",
    "Register",
    "RelayAccept",
    "RelayClose",
    "RelayData",
    "RelayOpen",
    "Role",
    "SamplingParams",
    "SignalError",
    "StreamEnd",
    "StreamFailed",
    "TandemError",
    "TandemSettings",
    "Text",
    "TokenChunk",
    "TokenExpired",
    "TokenInvalid",
    "UnknownMessage",
    "VersionMismatch",
    "Welcome",
    "add_settings_arguments",
    "decode",
    "describe_settings_error",
    "encode",
    "load_settings",
    "log_format",
    "mint_token",
    "settings_from_args",
    "split",
    "verify_token",
]


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_pinned() -> None:
    assert sorted(EXPORTED, key=_isort_key) == EXPORTED
    assert shared.__all__ == EXPORTED


def test_every_exported_name_exists() -> None:
    for name in shared.__all__:
        assert hasattr(shared, name), name


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(shared).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("shared.")
    }
    assert public <= set(shared.__all__)


def test_exported_members_come_from_private_modules() -> None:
    for name in shared.__all__:
        value = getattr(shared, name)
        module = getattr(value, "__module__", None)
        if module is not None and isinstance(value, type | type(lambda: None)):
            assert module.startswith("shared."), (name, module)
