"""``cloud-worker``: serve a GGUF model to edge peers that signaling sends our way."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web
from pydantic import ValidationError

from cloud_worker.app import create_app
from cloud_worker.install import SPEC
from cloud_worker.service import notifications
from cloud_worker.settings import WorkerSettings
from daemon.install_cli import COMMANDS, add_install_commands, run_install_command
from link import quiet_webrtc_logs
from shared.logs import configure_logging
from shared.settings import (
    add_settings_arguments,
    describe_settings_error,
    settings_from_args,
)

EXAMPLE = """example:
  export TANDEM_TOKEN=$(signaling-server token --role worker --peer-id gpu-1)
  cloud-worker serve --signaling ws://127.0.0.1:8765/v1/signal --model /models/big.gguf --n-gpu-layers -1
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cloud-worker",
        description="Tandem cloud worker: serves escalated requests from edge agents over WebRTC.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="connect to signaling and serve",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(serve, WorkerSettings)
    add_install_commands(commands, SPEC)
    args = parser.parse_args(argv)
    if args.command in COMMANDS:
        return run_install_command(args, SPEC)
    try:
        settings = settings_from_args(WorkerSettings, args)
        configure_logging(settings.log_level, settings.log_format, os.environ)
        quiet_webrtc_logs(settings.log_level)
        app = create_app(settings)
        service = notifications(app)  # READY/STATUS/WATCHDOG under systemd
    except ValidationError as exc:
        print(f"cloud-worker: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # missing token or model, unreadable --config
        print(f"cloud-worker: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("cloud_worker").info(
        "health and metrics on http://%s:%d/healthz", settings.host, settings.port
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=service.listening,  # called once /healthz listens
        handler_cancellation=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
