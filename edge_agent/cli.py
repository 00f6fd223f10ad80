"""``edge-agent``: the local OpenAI/Ollama-compatible endpoint of Tandem (its commands)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from daemon.install_cli import COMMANDS, add_install_commands, run_install_command
from edge_agent.app import create_app
from edge_agent.footprint import limit_malloc_arenas
from edge_agent.install import SPEC
from edge_agent.service import notifications
from edge_agent.settings import EdgeSettings
from link import quiet_webrtc_logs
from shared.logs import configure_logging
from shared.settings import (
    add_settings_arguments,
    describe_settings_error,
    load_settings,
    log_format,
    settings_from_args,
)

EXAMPLE = """examples:
  edge-agent serve                                   # local model only, http://127.0.0.1:8080
  export TANDEM_TOKEN=$(signaling-server token --role edge --peer-id pi-kitchen)
  edge-agent serve --signaling wss://signal.example:8765/v1/signal --model ~/models/small.gguf
  edge-agent netcheck --signaling wss://signal.example:8765/v1/signal  # which path will work?
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Tandem edge agent: answers OpenAI/Ollama-style HTTP calls with a local "
        "model and escalates hard prompts to cloud workers over WebRTC.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the HTTP API (POST /v1/chat/completions, /v1/completions, "
        "GET /v1/models, /healthz, /metrics).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(serve, EdgeSettings)
    netcheck = commands.add_parser(
        "netcheck",
        help="probe signaling, STUN and TURN; say which path the cloud link will take",
        description="Probe the signaling server (WebSocket and token), STUN over UDP, the NAT's "
        "behaviour (easy / hard / UDP blocked) and TURN over UDP and TCP, then print a verdict. "
        "--signaling and --token also come from TANDEM_SIGNALING / TANDEM_TOKEN or --config.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    netcheck.add_argument("--signaling", default=None, help="signaling WebSocket URL")
    netcheck.add_argument("--token", default=None, help="this edge's peer token")
    netcheck.add_argument(
        "--ca-file", type=Path, default=None, metavar="PEM", help="CA of signaling's TLS cert"
    )
    netcheck.add_argument(
        "--insecure-signaling",
        action="store_true",
        default=None,
        help="allow plaintext ws:// to another host",
    )
    netcheck.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="TOML settings file"
    )
    netcheck.add_argument("--timeout-s", type=float, default=10.0, help="signaling deadline")
    netcheck.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    add_install_commands(commands, SPEC)
    args = parser.parse_args(argv)
    if args.command in COMMANDS:
        return run_install_command(args, SPEC)
    if args.command == "netcheck":
        return _netcheck(args)
    limit_malloc_arenas(os.environ)  # before any thread: see edge_agent/footprint.py
    try:
        settings = settings_from_args(EdgeSettings, args)
        configure_logging(settings.log_level, settings.log_format, os.environ)
        quiet_webrtc_logs(settings.log_level)
        app = create_app(settings)
        service = notifications(app, settings)  # READY/STATUS/WATCHDOG under systemd
    except ValidationError as exc:
        print(f"edge-agent: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # missing token or model, unreadable --config
        print(f"edge-agent: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("edge_agent").info(
        "edge API on http://%s:%d/v1 (cloud: %s)",
        settings.host,
        settings.port,
        settings.signaling or "disabled",
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=service.listening,  # called once the API listens: READY may follow
        handler_cancellation=True,
        access_log=None,  # edge_agent.api.access_log writes one richer line per request
    )
    return 0


def _netcheck(args: argparse.Namespace) -> int:
    names = ("signaling", "token", "ca_file", "insecure_signaling")
    overrides = {k: v for k in names if (v := getattr(args, k)) is not None}
    try:
        settings = load_settings(EdgeSettings, config_file=args.config, overrides=overrides)
    except ValidationError as exc:
        print(f"edge-agent: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    token = settings.token_source()
    if not settings.signaling or token is None:
        print(
            "edge-agent netcheck: needs --signaling and --token or --token-file (or TANDEM_*)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level="ERROR", format=log_format(os.environ), stream=sys.stderr)
    # Here, not at the top: netcheck's STUN/TURN probes import aioice, which the
    # serving process does not need until it opens a WebRTC link (footprint).
    from edge_agent.netcheck import run_netcheck

    try:
        report = asyncio.run(
            run_netcheck(
                settings.signaling,
                token,
                timeout_s=args.timeout_s,
                ca_file=settings.ca_file,
                insecure_signaling=settings.insecure_signaling,
            )
        )
    except ValueError as exc:  # a ws:// URL to another host, an unreadable --ca-file
        print(f"edge-agent netcheck: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print("\n".join(report.lines()))
    return 0 if report.expected_path != "none" else 1


if __name__ == "__main__":
    sys.exit(main())
