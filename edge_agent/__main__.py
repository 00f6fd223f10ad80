"""``edge-agent`` and ``python -m edge_agent``: the CLI (``edge_agent.cli``), imported with
the cyclic garbage collector paused."""

from __future__ import annotations

import gc
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Its imports (the serving path's: aiohttp, pydantic models by the
    hundred) allocate hundreds of thousands of objects that all stay alive; the
    collector would scan the growing heap over and over meanwhile, about a sixth of an
    edge's start-up on the way to its first answer. It is back on before anything
    runs."""
    gc.disable()
    try:
        from edge_agent.cli import main as cli_main
    finally:
        gc.enable()
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
