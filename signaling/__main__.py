"""``signaling-server``: run the signaling server, or mint a peer token.

The only module that configures logging or calls ``web.run_app``; everything else is a
library that tests drive through ``create_app``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from daemon.install_cli import COMMANDS, add_install_commands, run_install_command
from shared.logs import configure_logging
from shared.messages import Role
from shared.settings import (
    add_settings_arguments,
    describe_settings_error,
    load_settings,
    settings_from_args,
)
from shared.tokens import mint_token
from signaling.app import create_app
from signaling.install import SPEC
from signaling.service import notifications
from signaling.settings import SignalingSettings
from signaling.tls import is_loopback, server_ssl_context, set_tls_read_buffer

__all__ = ["build_parser", "main"]

logger = logging.getLogger("signaling")

_PROG = "signaling-server"
_EXIT_USAGE = 2

_SERVE_EPILOG = """\
example:
  TANDEM_SECRET=$(head -c 32 /dev/urandom | base64) signaling-server serve --port 8765

  signaling-server serve --host 0.0.0.0 --tls-cert /etc/tandem/tls/fullchain.pem \
      --tls-key /etc/tandem/tls/key.pem      # across networks: wss:// only

Peers connect to wss://HOST:PORT/v1/signal (ws:// on loopback) with
"Authorization: Bearer <token>".
Also served: GET /healthz (JSON) and GET /metrics (Prometheus). /metrics is on the main
listener only when --host is loopback; otherwise give --metrics-host (e.g. 127.0.0.1).

Rotating the secret: restart with --secret NEW and --previous-secret OLD, hand out tokens
minted with NEW (peers re-read --token-file at every reconnect), then restart without
--previous-secret: peers still holding OLD tokens are refused."""

_TOKEN_EPILOG = """\
example:
  TANDEM_SECRET=... signaling-server token --role worker --peer-id gpu-1 --ttl 3600

The secret comes from TANDEM_SECRET or the --config file, never a flag (ps would show it).
Tokens are signed with the current secret and name it by a key id (a hash, never the
secret), so that signaling can still tell them apart during a rotation."""


def build_parser() -> argparse.ArgumentParser:
    """The CLI: ``serve`` and ``token`` subcommands."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Tandem signaling server: authenticates edges and workers, matches each "
        "edge's offer to the least loaded worker and relays the SDP answer back.",
        epilog="run `signaling-server COMMAND --help` for the options of each command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the signaling server until interrupted (Ctrl-C or SIGTERM).\n"
        "Options come from flags, then TANDEM_* env vars, then the --config TOML file.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(serve, SignalingSettings)
    token = commands.add_parser(
        "token",
        help="print a signed peer token",
        description="Print a token for one edge or worker, signed with the shared secret.",
        epilog=_TOKEN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="what the peer may do: edge or worker",
    )
    token.add_argument(
        "--peer-id", required=True, metavar="ID", help="the peer's name, 1..128 characters"
    )
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="lifetime in seconds [default: token_ttl_s, 86400]",
    )
    token.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="TOML file holding the secret"
    )
    add_install_commands(commands, SPEC)
    return parser


def _fail(message: str) -> int:
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    return _EXIT_USAGE


def _raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one; the limit now in force.

    Every connected peer holds a socket, and the usual soft limit (1024, also systemd's
    default for services) would refuse peers long before memory runs short: 10,000 idle
    peers take ~80 MB. The hard limit (systemd's default: 524288) is the operator's."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open files limit above %d: %s", soft, exc)
            return soft
        return wanted
    return soft


def _serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(SignalingSettings, args)
    configure_logging(settings.log_level, settings.log_format, os.environ)
    ssl_context = server_ssl_context(settings)
    if ssl_context is not None:
        set_tls_read_buffer(settings.tls_read_buffer_bytes)  # this process only
    elif "tls_read_buffer_bytes" in settings.model_fields_set:
        logger.warning("--tls-read-buffer-bytes has no effect without --tls-cert")
    app = create_app(settings)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    scheme = "wss" if ssl_context is not None else "ws"
    if ssl_context is None and not is_loopback(settings.host):
        logger.warning(
            "serving plaintext ws:// on %s: peers' tokens and TURN credentials cross the "
            "network in clear unless a TLS proxy fronts this port (--tls-cert/--tls-key "
            "serve wss:// natively)",
            settings.host,
        )
    url = f"{scheme}://{host}:{settings.port}/v1/signal"
    service = notifications(app, url)  # READY/STATUS/WATCHDOG under systemd
    logger.info("signaling listening on %s", url)
    if not settings.metrics_on_main and settings.metrics_host is None:
        logger.warning(
            "/metrics is not served on %s (not loopback); set --metrics-host 127.0.0.1 "
            "to scrape it",
            settings.host,
        )
    open_files = _raise_open_files_limit()  # after every check that may refuse to start
    logger.info("open files limit %d: about as many peers can connect", open_files)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        ssl_context=ssl_context,
        print=service.listening,  # called once it listens: READY
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = load_settings(SignalingSettings, config_file=args.config)
    ttl_s = args.ttl if args.ttl is not None else settings.token_ttl_s
    token = mint_token(
        settings.require_secret(),
        role=Role(args.role),
        peer_id=args.peer_id,
        ttl_s=ttl_s,
        now=time.time(),
    )
    sys.stdout.write(token + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``signaling-server``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command in COMMANDS:
            return run_install_command(args, SPEC)
        if args.command == "serve":
            return _serve(args)
        return _token(args)
    except ValidationError as exc:
        return _fail(describe_settings_error(exc))
    except (ValueError, OSError) as exc:  # missing secret, bad --ttl/--peer-id, unreadable --config
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
