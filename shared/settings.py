"""Settings base shared by the three processes: ``TANDEM_*`` env vars, a TOML file, flags.

Precedence, highest first: command-line flags, ``TANDEM_<NAME>`` environment variables,
the TOML file given with ``--config``, the field default. Each process declares its own
fields (with a description, which becomes its ``--help`` text) on a subclass; this module
only knows how to load them, so that the three CLIs behave the same.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.logs import LogFormat

__all__ = [
    "ENV_PREFIX",
    "MAX_TOKEN_FILE_BYTES",
    "PeerSettings",
    "TandemSettings",
    "add_settings_arguments",
    "describe_settings_error",
    "load_settings",
    "log_format",
    "read_token_file",
    "settings_from_args",
]

ENV_PREFIX = "TANDEM_"
MAX_TOKEN_FILE_BYTES = 16_384  # a token is a few hundred bytes; anything this big is not one
S = TypeVar("S", bound="TandemSettings")


class TandemSettings(BaseSettings):
    """Fields every process has."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level (logs go to stderr; journald picks them up)."
    )
    log_format: LogFormat = Field(
        default="text",
        description="Log line format: text (under systemd: syslog priority prefixes, no "
        "timestamps, journald adds them) or json (one object per line: ts, level, logger, "
        "msg and the event's fields).",
    )


class PeerSettings(TandemSettings):
    """Fields of a process that joins through signaling: the edge and the worker."""

    token: SecretStr | None = Field(
        default=None,
        description="This peer's signed token (from `signaling-server token`); "
        "prefer the env var, which other users cannot see in ps.",
    )
    token_file: Path | None = Field(
        default=None,
        description="File holding this peer's token, re-read at every (re)connect to "
        "signaling, so that a renewed token is picked up without a restart (signaling "
        "closes a connection when its token expires). Not with --token.",
    )
    max_frame_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="Largest data-channel frame; bigger messages are split.",
    )
    max_queued_frames: int = Field(
        default=4096,
        ge=16,
        le=1_000_000,
        description="Messages one data-channel or relay link holds for its reader; a peer "
        "that overruns them gets its link closed (only that link).",
    )
    ice_host_addresses: str | None = Field(
        default=None,
        description="Comma-separated local addresses to offer as ICE host candidates "
        "(default: every interface but loopback; 'none': no host candidates, only TURN or "
        "the relay). The quickstart uses 127.0.0.1.",
    )
    turn_transport: Literal["auto", "udp", "tcp", "tls"] = Field(
        default="auto",
        description="Which TURN URL to use when signaling offers several (aiortc takes one): "
        "auto probes UDP to the TURN server before each attempt, then TCP if UDP is blocked, "
        "then TLS (a turns: URL) if TCP to the turn: port is blocked too.",
    )
    reconnect_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between reconnections (jittered exponential backoff).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed signaling's TLS certificate, for a "
        "wss:// --signaling URL (default: the system CAs). Only these CAs are trusted.",
    )
    insecure_signaling: bool = Field(
        default=False,
        description="Allow a plaintext ws:// --signaling URL to another host (the token, TURN "
        "credentials and session setup then cross the network in clear). Loopback ws:// "
        "needs no flag.",
    )

    @field_validator("token_file")
    @classmethod
    def _token_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                read_token_file(value)
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> PeerSettings:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give --token or --token-file, not both")
        return self

    def token_source(self) -> Callable[[], str] | None:
        """What the signaling client calls at each (re)connect for the token to present:
        the file's current content (``--token-file``) or the fixed ``--token``; None if
        neither is set."""
        path, token = self.token_file, self.token
        if path is not None:
            return lambda: read_token_file(path)
        if token is not None:
            return token.get_secret_value
        return None


def read_token_file(path: Path) -> str:
    """The token held in ``path``, surrounding whitespace removed.

    ``OSError`` if it cannot be read; ``ValueError`` naming the file (never its content)
    if it is empty, too large or not ASCII, none of which a token can be.
    """
    with path.open("rb") as fh:
        data = fh.read(MAX_TOKEN_FILE_BYTES + 1)
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"token file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"token file {path} is not ASCII text, so it holds no token") from None
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source over an already-parsed TOML document."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = {k.replace("-", "_"): v for k, v in data.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(
    cls: type[S], *, config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> S:
    """Build ``cls`` from flags (``overrides``), env, then ``config_file`` (TOML)."""
    data: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            data = tomllib.load(fh)

    def sources(
        _owner: type[BaseSettings],
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _MappingSource(settings_cls, data))

    loaded = type(cls.__name__, (cls,), {"settings_customise_sources": classmethod(sources)})
    return cast(S, loaded(**dict(overrides or {})))


def log_format(environ: Mapping[str, str]) -> str:
    """Log line format: journald stamps time and level itself, a terminal needs them."""
    if "JOURNAL_STREAM" in environ:
        return "%(name)s: %(message)s"
    return "%(asctime)s %(levelname)s %(name)s: %(message)s"


def describe_settings_error(exc: ValidationError) -> str:
    """One line for a user, naming each bad option; never the input values, since one of
    them may be a secret (pydantic's own text echoes them)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )
    return f"invalid settings: {problems}"


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    return get_origin(annotation) is not None and bool in get_args(annotation)


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type[TandemSettings]) -> None:
    """Add one ``--kebab-name`` flag per settings field, plus ``--config``.

    Flags default to "not given" so that env vars and the config file still apply.
    """
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file with any of the options below.",
    )
    for name, field in cls.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = ENV_PREFIX + name.upper()
        default = field.default
        if field.is_required():
            shown = "required"
        elif field.annotation is SecretStr or isinstance(default, SecretStr):
            shown = "(secret)"
        else:
            shown = repr(default) if default is not None else "none"
        help_text = f"{field.description or ''} [env {env}; default {shown}]".strip()
        if _is_bool(field.annotation):
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        elif _repeatable(field):
            parser.add_argument(
                flag,
                dest=name,
                action="append",
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=help_text + " (repeatable)",
            )
        else:
            parser.add_argument(
                flag, dest=name, default=argparse.SUPPRESS, metavar=name.upper(), help=help_text
            )


def _repeatable(field: Any) -> bool:
    """A text field whose flag may be given several times (joined with commas)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("repeatable"))


def settings_from_args(cls: type[S], args: argparse.Namespace) -> S:
    """The counterpart of ``add_settings_arguments``: load ``cls`` from parsed flags."""
    overrides = {
        k: ",".join(v) if isinstance(v, list) else v
        for k, v in vars(args).items()
        if k in cls.model_fields
    }
    return load_settings(cls, config_file=args.config, overrides=overrides)
