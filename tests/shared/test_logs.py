"""``shared.logs``: the two line formats, structured events, and a real process under a
journald-like environment."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.logs import configure_logging, log_event
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_json_lines_have_the_stable_keys_and_the_event_fields(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", {}, stream=out)
    log = logging.getLogger("tandem.test")
    log_event(log, logging.INFO, "request", request_id="r1", status=200, ttft_ms=12.5, path=None)
    log.warning("plain %s", "message")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, "one line per record, tracebacks included"
    event, plain, failed = (json.loads(line) for line in lines)
    assert list(event)[:4] == ["ts", "level", "logger", "msg"]
    assert event["level"] == "INFO" and event["logger"] == "tandem.test"
    assert event["ts"].endswith("+00:00")
    assert event["request_id"] == "r1" and event["status"] == 200 and event["ttft_ms"] == 12.5
    assert event["path"] is None
    assert event["msg"] == "request request_id=r1 status=200 ttft_ms=12.5 path=-"
    assert plain["msg"] == "plain message" and plain["level"] == "WARNING"
    assert "ValueError: boom" in failed["exc"]


def test_event_fields_cannot_overwrite_the_stable_keys(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", {}, stream=out)
    log_event(logging.getLogger("x"), logging.INFO, "evt", level="forged", msg="forged", ok=1)
    entry = json.loads(out.getvalue())
    assert entry["level"] == "INFO" and entry["msg"].startswith("evt ")
    assert entry["ok"] == 1


def test_text_on_a_terminal_has_time_and_level(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", {}, stream=out)
    log_event(logging.getLogger("edge"), logging.INFO, "request", reason="forced local")
    (line,) = out.getvalue().splitlines()
    assert ' INFO edge: request reason="forced local"' in line
    assert line[:4].isdigit(), "a terminal line starts with its timestamp"


def test_text_under_journald_has_priority_prefixes_and_no_timestamp(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "text", {"JOURNAL_STREAM": "8:1234"}, stream=out)
    log = logging.getLogger("edge")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    try:
        raise RuntimeError("x")
    except RuntimeError:
        log.exception("c")
    lines = out.getvalue().splitlines()
    assert lines[:4] == ["<7>edge: d", "<6>edge: i", "<4>edge: w", "<3>edge: e"]
    assert len(lines) > 5 and all(line.startswith("<3>") for line in lines[4:]), (
        "every line of a traceback keeps its priority"
    )


def test_configuring_twice_never_doubles_lines(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", {}, stream=out)
    configure_logging("INFO", "json", {}, stream=out)
    logging.getLogger("x").info("once")
    assert len(out.getvalue().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_real_process_under_journald(fmt: str, tmp_path: Path) -> None:
    """signaling-server started as systemd would (JOURNAL_STREAM set), with the format
    from its env var: priority-prefixed text without timestamps, or JSON lines."""
    secret = "journald-test-secret-" + "s" * 32
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "JOURNAL_STREAM": "8:4242",
        "TANDEM_SECRET": secret,
        "TANDEM_LOG_FORMAT": fmt,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "signaling.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling", "serve", "--port", str(_free_port())],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            wait_until(
                lambda: "listening" in log_path.read_text(), timeout_s=60, what="signaling up"
            )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lines = [line for line in log_path.read_text().splitlines() if line]
    assert lines
    assert secret not in log_path.read_text()
    if fmt == "json":
        entries = [json.loads(line) for line in lines]
        assert any("listening" in e["msg"] and e["level"] == "INFO" for e in entries)
        assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    else:
        assert any(line.startswith("<6>signaling: ") and "listening" in line for line in lines)
        assert all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines)


@pytest.mark.parametrize("module", ["edge_agent", "cloud_worker", "signaling"])
def test_every_process_takes_log_format(module: str) -> None:
    """``--log-format`` on each CLI, refused by name when it is not text or json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    help_text = subprocess.run(
        [sys.executable, "-m", module, "serve", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "--log-format" in help_text and "TANDEM_LOG_FORMAT" in help_text
    bad = subprocess.run(
        [sys.executable, "-m", module, "serve", "--log-format", "xml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "log_format" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
