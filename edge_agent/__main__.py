"""``edge-agent``: the local OpenAI/Ollama-compatible endpoint of Tandem."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web
from pydantic import ValidationError

from edge_agent.app import create_app
from edge_agent.settings import EdgeSettings
from link import quiet_webrtc_logs
from shared.settings import (
    add_settings_arguments,
    describe_settings_error,
    log_format,
    settings_from_args,
)

EXAMPLE = """examples:
  edge-agent serve                                   # local model only, http://127.0.0.1:8080
  export TANDEM_TOKEN=$(signaling-server token --role edge --peer-id pi-kitchen)
  edge-agent serve --signaling ws://signal.example:8765/v1/signal --model ~/models/small.gguf
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
        description="Serve the HTTP API (POST /v1/chat/completions, /v1/completions, GET /v1/models, "
        "/healthz, /metrics).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(serve, EdgeSettings)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(EdgeSettings, args)
        logging.basicConfig(
            level=settings.log_level, format=log_format(os.environ), stream=sys.stderr
        )
        quiet_webrtc_logs(settings.log_level)
        app = create_app(settings)
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
        print=None,
        handler_cancellation=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
