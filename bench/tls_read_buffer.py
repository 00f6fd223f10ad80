"""What a smaller TLS read buffer costs in throughput: bulk bytes into an asyncio TLS server.

``signaling-server serve --tls-read-buffer-bytes`` (default 32 KiB) replaces asyncio's
256 KiB per-connection read buffer to save memory per idle wss:// peer (see
``bench.signaling_load --tls``). The price is more, smaller reads when a peer sends a
lot (relayed sessions). This measures it where it happens: an asyncio TLS server (the
same ``SSLProtocol`` aiohttp's listener uses) receives ``--megabytes`` from a client in
another process, for each ``--sizes``; reported: MB/s and the server's CPU seconds per
GB, against asyncio's own 262144 measured in the same run (the baseline).

    python -m bench.tls_read_buffer --megabytes 512 --sizes 16384,32768,262144
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from signaling.tls import set_tls_read_buffer
from tests.support.tls import CertAuthority

BASELINE = 256 * 1024  # asyncio's SSLProtocol.max_size
CHUNK = 64 * 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sink(asyncio.Protocol):
    """Counts what arrives; ``done`` at EOF with (bytes, seconds, cpu seconds)."""

    def __init__(self, done: asyncio.Future[tuple[int, float, float]]) -> None:
        self.done, self.received, self.start, self.cpu0 = done, 0, 0.0, 0.0

    def data_received(self, data: bytes) -> None:
        if not self.received:
            self.start, self.cpu0 = time.perf_counter(), _cpu_s()
        self.received += len(data)

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            elapsed = time.perf_counter() - self.start
            self.done.set_result((self.received, elapsed, _cpu_s() - self.cpu0))


async def measure(size: int, megabytes: int, context: ssl.SSLContext, ca: Path) -> dict[str, Any]:
    set_tls_read_buffer(size)  # what `serve --tls-read-buffer-bytes` does, bounds and all
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[int, float, float]] = loop.create_future()
    server = await loop.create_server(lambda: Sink(done), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.tls_read_buffer", "--send", str(port), str(ca), str(megabytes)
    )
    received, elapsed, cpu = await asyncio.wait_for(done, 600)
    await sender.wait()
    server.close()
    await server.wait_closed()
    return {
        "read_buffer_bytes": size,
        "received_mb": round(received / 1e6, 1),
        "mb_per_s": round(received / 1e6 / elapsed, 1),
        "server_cpu_s_per_gb": round(cpu / (received / 1e9), 3),
    }


def send(port: int, ca: Path, megabytes: int) -> None:
    """The client: a plain blocking TLS socket (no asyncio), in its own process."""
    context = ssl.create_default_context(cafile=str(ca))
    payload = b"\x5a" * CHUNK
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        for _ in range(megabytes * 1024 * 1024 // CHUNK):
            tls.sendall(payload)
        tls.settimeout(60)
        with contextlib.suppress(OSError):  # ssl.SSLError is one
            tls.unwrap()  # close_notify: the server's EOF after the last record


async def run(sizes: list[int], megabytes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tandem-bench-tls-") as tmp:
        ca = CertAuthority.make(Path(tmp), "bench CA")
        cert = ca.issue(("127.0.0.1",))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert, cert.key)
        ordered = [BASELINE, *[s for s in sizes if s != BASELINE]]
        results = [await measure(size, megabytes, context, ca.ca_file) for size in ordered]
    base = results[0]
    for r in results:
        r["throughput_ratio"] = round(r["mb_per_s"] / base["mb_per_s"], 2)
        r["cpu_ratio"] = round(r["server_cpu_s_per_gb"] / base["server_cpu_s_per_gb"], 2)
    return {"megabytes": megabytes, "baseline_bytes": BASELINE, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tls_read_buffer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[16384, 32768, BASELINE],
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    parser.add_argument("--quick", action="store_true", help="16 MB per size (tests)")
    parser.add_argument("--send", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.send is not None:
        send(int(args.send[0]), Path(args.send[1]), int(args.send[2]))
        return 0
    if args.quick:
        args.megabytes = min(args.megabytes, 16)
    report = asyncio.run(run(args.sizes, args.megabytes))
    print(f"{args.megabytes} MB into an asyncio TLS server, per read buffer size:")
    for r in report["results"]:
        print(
            f"  {r['read_buffer_bytes']:>7}: {r['mb_per_s']} MB/s (x{r['throughput_ratio']} of "
            f"262144), server CPU {r['server_cpu_s_per_gb']} s/GB (x{r['cpu_ratio']})"
        )
    print("baseline: asyncio's 262144; shared machine: read the ratios")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
