"""Settings: flags > TANDEM_* env > TOML file > defaults; the flag builder; log format."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from pydantic import Field, SecretStr, ValidationError

from shared import (
    ENV_PREFIX,
    TandemSettings,
    add_settings_arguments,
    describe_settings_error,
    load_settings,
    log_format,
    settings_from_args,
)


class DemoSettings(TandemSettings):
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")
    name: str = Field(default="demo", description="Instance name.")
    debug: bool = Field(default=False, description="Extra checks.")
    ratio: float | None = Field(default=None, description="Optional ratio.")
    secret: SecretStr = Field(default=SecretStr("do-not-print-me"), description="Shared secret.")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tandem.toml"
    path.write_text(text)
    return path


def parser_for(cls: type[TandemSettings] = DemoSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo")
    add_settings_arguments(parser, cls)
    return parser


def from_argv(argv: list[str]) -> DemoSettings:
    return settings_from_args(DemoSettings, parser_for().parse_args(argv))


# ---------------------------------------------------------------------------- precedence


def test_load_settings_returns_the_class() -> None:
    settings = load_settings(TandemSettings)
    assert isinstance(settings, TandemSettings)
    assert settings.log_level == "INFO"


def test_defaults() -> None:
    settings = load_settings(DemoSettings)
    assert isinstance(settings, DemoSettings)
    assert (settings.port, settings.name, settings.debug, settings.ratio) == (
        8000,
        "demo",
        False,
        None,
    )
    assert settings.log_level == "INFO"
    assert settings.secret.get_secret_value() == "do-not-print-me"


def test_toml_over_defaults(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path, 'port = 9001\nname = "from-toml"\ndebug = true\nlog-level = "DEBUG"\n'
    )
    settings = load_settings(DemoSettings, config_file=path)
    assert (settings.port, settings.name, settings.debug) == (9001, "from-toml", True)
    assert settings.log_level == "DEBUG"  # kebab-case keys are accepted
    assert settings.ratio is None


def test_env_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, 'port = 9001\nname = "from-toml"\n')
    monkeypatch.setenv("TANDEM_PORT", "9002")
    settings = load_settings(DemoSettings, config_file=path)
    assert settings.port == 9002
    assert settings.name == "from-toml"


def test_flags_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, "port = 9001\n")
    monkeypatch.setenv("TANDEM_PORT", "9002")
    settings = load_settings(DemoSettings, config_file=path, overrides={"port": 9003})
    assert settings.port == 9003


def test_full_precedence_through_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, 'port = 1\nname = "toml"\ndebug = true\nratio = 0.5\n')
    monkeypatch.setenv("TANDEM_PORT", "2")
    monkeypatch.setenv("TANDEM_NAME", "env")
    settings = from_argv(["--config", str(path), "--port", "3"])
    assert settings.port == 3  # flag
    assert settings.name == "env"  # env
    assert settings.debug is True  # TOML
    assert settings.ratio == 0.5  # TOML
    assert settings.log_level == "INFO"  # default


def test_env_is_case_insensitive_and_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("tandem_name", "lower")
    monkeypatch.setenv("NAME", "unprefixed")
    assert load_settings(DemoSettings).name == "lower"


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_SECRET", "from-env")
    settings = load_settings(DemoSettings)
    assert settings.secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_unknown_toml_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9001\nprot = 9002\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(DemoSettings, config_file=path)


def test_invalid_values_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        load_settings(DemoSettings, config_file=write_toml(tmp_path, "port = 0\n"))
    monkeypatch.setenv("TANDEM_PORT", "eighty")
    with pytest.raises(ValidationError):
        load_settings(DemoSettings)
    monkeypatch.delenv("TANDEM_PORT")
    with pytest.raises(ValidationError):
        from_argv(["--log-level", "CHATTY"])


def test_malformed_toml(tmp_path: Path) -> None:
    import tomllib

    with pytest.raises(tomllib.TOMLDecodeError):
        load_settings(DemoSettings, config_file=write_toml(tmp_path, "port = \n"))


def test_settings_are_frozen() -> None:
    settings = load_settings(DemoSettings)
    with pytest.raises(ValidationError):
        settings.port = 1


# ---------------------------------------------------------------------------- flag builder


def test_flags_are_kebab_case() -> None:
    args = parser_for().parse_args(
        ["--log-level", "ERROR", "--port", "81", "--name", "x", "--ratio", "2.5"]
    )
    assert vars(args) == {
        "config": None,
        "log_level": "ERROR",
        "port": "81",
        "name": "x",
        "ratio": "2.5",
    }
    with pytest.raises(SystemExit):
        parser_for().parse_args(["--log_level", "ERROR"])


def test_flags_not_given_are_absent() -> None:
    args = parser_for().parse_args([])
    assert vars(args) == {"config": None}


def test_flag_strings_are_validated_into_fields() -> None:
    settings = from_argv(["--port", "81", "--ratio", "2.5"])
    assert settings.port == 81
    assert settings.ratio == 2.5


def test_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    help_text = " ".join(parser_for().format_help().split())  # undo argparse's wrapping
    for flag, description, env in [
        ("--port PORT", "Port to listen on.", "TANDEM_PORT"),
        ("--name NAME", "Instance name.", "TANDEM_NAME"),
        ("--log-level LOG_LEVEL", "Log level", "TANDEM_LOG_LEVEL"),
        ("--secret SECRET", "Shared secret.", "TANDEM_SECRET"),
    ]:
        assert flag in help_text
        assert description in help_text
        assert f"env {env}" in help_text
    assert "default 8000" in help_text
    assert "--config FILE" in help_text


def test_help_never_shows_a_secret_default() -> None:
    help_text = parser_for().format_help()
    assert "do-not-print-me" not in help_text
    assert "(secret)" in help_text


def test_bool_flags() -> None:
    assert "--debug, --no-debug" in parser_for().format_help()
    assert from_argv(["--debug"]).debug is True
    assert from_argv(["--no-debug"]).debug is False
    assert from_argv([]).debug is False


def test_no_flag_overrides_env_true(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TANDEM_DEBUG", "true")
    assert from_argv([]).debug is True
    assert from_argv(["--no-debug"]).debug is False
    path = write_toml(tmp_path, "debug = true\n")
    monkeypatch.delenv("TANDEM_DEBUG")
    assert from_argv(["--config", str(path), "--no-debug"]).debug is False


def test_optional_bool_gets_a_bool_flag() -> None:
    class Optional(TandemSettings):
        fast: bool | None = Field(default=None, description="Go fast.")

    parser = parser_for(Optional)
    assert "--fast, --no-fast" in parser.format_help()
    assert settings_from_args(Optional, parser.parse_args(["--no-fast"])).fast is False
    assert settings_from_args(Optional, parser.parse_args([])).fast is None


def test_help_for_required_field_has_no_pydantic_internals() -> None:
    class Required(TandemSettings):
        peer_id: str = Field(description="Who we are.")

    help_text = parser_for(Required).format_help()
    assert "TANDEM_PEER_ID" in help_text
    assert "PydanticUndefined" not in help_text


# ------------------------------------------------------------------------------ log format


def test_log_format_for_a_terminal() -> None:
    fmt = log_format({"TERM": "xterm"})
    assert "%(asctime)s" in fmt
    assert "%(levelname)s" in fmt
    assert fmt.endswith("%(name)s: %(message)s")


def test_log_format_under_journald() -> None:
    fmt = log_format({"JOURNAL_STREAM": "8:123456"})
    assert fmt == "%(name)s: %(message)s"


def test_settings_errors_name_the_option_but_never_echo_values() -> None:
    class Guarded(TandemSettings):
        secret: SecretStr
        port: int = 1

    with pytest.raises(ValidationError) as info:
        load_settings(Guarded, overrides={"secret": "hunter2-hunter2", "port": "not-a-port"})
    text = describe_settings_error(info.value)
    assert "port" in text
    assert "hunter2" not in text and "not-a-port" not in text


def test_a_peers_link_inbox_bound_is_a_validated_setting() -> None:
    from link import DEFAULT_QUEUED_FRAMES
    from shared.settings import PeerSettings

    assert PeerSettings().max_queued_frames == DEFAULT_QUEUED_FRAMES == 4096
    with pytest.raises(ValidationError, match="max_queued_frames"):
        PeerSettings(max_queued_frames=0)


def test_a_token_file_is_read_afresh_at_each_call(tmp_path: Path) -> None:
    from shared.settings import PeerSettings

    path = tmp_path / "token"
    path.write_text("first.token.value\n")
    source = PeerSettings(token_file=path).token_source()
    assert source is not None and source() == "first.token.value"
    path.write_text("  renewed.token.value  ")
    assert source() == "renewed.token.value"  # a renewed token, no restart
    path.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        source()


def test_token_and_token_file_are_mutually_exclusive(tmp_path: Path) -> None:
    from shared.settings import PeerSettings

    path = tmp_path / "token"
    path.write_text("a.b.c")
    with pytest.raises(ValidationError, match="not both"):
        PeerSettings(token=SecretStr("a.b.c"), token_file=path)
    fixed = PeerSettings(token=SecretStr("x.y.z")).token_source()
    assert fixed is not None and fixed() == "x.y.z"
    assert PeerSettings().token_source() is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"\xff\xfe", "not ASCII"),
        (b"t" * 20_000, "larger"),
    ],
)
def test_a_bad_token_file_is_refused_at_startup_by_name(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    from shared.settings import PeerSettings

    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValidationError, match=problem) as info:
        PeerSettings(token_file=path)
    assert "token_file" in describe_settings_error(info.value)
