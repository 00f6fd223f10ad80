"""A user-space WAN: a TCP forwarder that delays every byte by a fixed one-way time in
each direction (this kernel has no ``sch_netem``). Order is kept; throughput is not
limited, only latency added.

    python -m bench.delay_line --listen 9001 --to 127.0.0.1:8000 --one-way-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk leaving ``delay`` s after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except OSError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    with contextlib.suppress(OSError):
        await sender


async def serve(listen: int, host: str, port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, up_w, delay), _pump(up_r, client_w, delay))
        for w in (client_w, up_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", required=True, help="host:port")
    parser.add_argument("--one-way-ms", type=float, required=True)
    args = parser.parse_args()
    host, port = args.to.rsplit(":", 1)
    asyncio.run(serve(args.listen, host, int(port), args.one_way_ms / 1000))


if __name__ == "__main__":
    main()
