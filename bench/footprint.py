"""The edge's footprint: resident memory and idle CPU with the model loaded, against
``python -m llama_cpp.server`` holding the same model, same run; then the edge inside a
Raspberry-Pi-4-like budget (one core, 1 GB of memory) against the same edge without it.

- RSS (``VmRSS``) once loaded and idle, and again after one 64-token answer;
- idle CPU: user+system time over ``--idle-s`` seconds (30; ``--quick``: 3) with both
  processes up and nobody asking, as a percentage of one core;
- the budget: ``taskset -c 0`` and a 1 GB memory cgroup made for the run (cgroup v2 if
  this machine delegates the memory controller, else v1's memory hierarchy, under this
  process's own cgroup; ``budget_memory_cap`` says which, or ``unavailable``); tokens/s
  and TTFT over a few answers, and the cgroup's peak memory.

Targets: edge RSS <= 250 MB, idle CPU < 1 %. ``--compare-tree DIR`` also measures the
edge run from another checkout (before/after in the same run).

    python -m bench.footprint [--quick] [--json PATH] [--compare-tree DIR]
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    LLAMA_SERVER_ALIAS,
    StreamTiming,
    bench_args,
    edge_process,
    finish,
    llama_server_process,
    median,
    model_or_exit,
    prompt,
    rounds_of,
    stream_chat,
)

MB = 1024 * 1024
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident MB of ``pid``: all (``VmRSS``), or anonymous (``RssAnon``: heap, KV
    cache) or file-backed (``RssFile``: the mmapped model, libraries) pages."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def memory_cgroup(limit_bytes: int) -> Iterator[tuple[str, Path | None, Path | None]]:
    """A memory cgroup of ``limit_bytes`` made for this run and removed after it:
    (kind, file to write a pid into, file holding the peak usage). v2 where this
    process's cgroup delegates ``memory``; else v1's memory hierarchy, nested under this
    process's own v1 memory cgroup; else ("unavailable", None, None)."""
    name = f"tandem-bench-{os.getpid()}"
    made: Path | None = None
    kind, procs, peak = "unavailable", None, None
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
                parent = Path("/sys/fs/cgroup") / path.lstrip("/")
                if "memory" in (parent / "cgroup.subtree_control").read_text().split():
                    made = parent / name
                    made.mkdir()
                    (made / "memory.max").write_text(str(limit_bytes))
                    (made / "memory.swap.max").write_text("0")
                    kind, procs, peak = "cgroup v2", made / "cgroup.procs", made / "memory.peak"
                    break
            if "memory" in controllers.split(","):
                parent = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
                made = parent / name
                made.mkdir()
                (made / "memory.limit_in_bytes").write_text(str(limit_bytes))
                kind = "cgroup v1 memory"
                procs, peak = made / "cgroup.procs", made / "memory.max_usage_in_bytes"
                break
    except OSError as exc:
        kind = f"unavailable ({exc.strerror or exc})"
        procs = peak = None
    try:
        yield kind, procs, peak
    finally:
        if made is not None and made.exists():
            for _ in range(50):  # the edge's exit empties it a moment later
                try:
                    made.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def answer(url: str, n: int, max_tokens: int = 64) -> StreamTiming:
    msgs = [{"role": "user", "content": prompt(n)}]
    return stream_chat(
        f"{url}/v1",
        msgs,
        max_tokens=max_tokens,
        headers={"X-Tandem-Route": "local"},
        extra={"stream_options": {"include_usage": True}},
    )


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=4, quick_rounds=1)
    parser.add_argument("--idle-s", type=float, default=None, help="default 30; --quick: 3")
    parser.add_argument("--compare-tree", type=Path, default=None)
    parser.add_argument("--no-budget", action="store_true", help="skip the Pi-like budget part")
    args = parser.parse_args()
    rounds = rounds_of(args)
    idle_s = args.idle_s if args.idle_s is not None else (3.0 if args.quick else 30.0)
    model = model_or_exit()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    figures: dict[str, Any] = {
        "baseline": "python -m llama_cpp.server with the same model",
        "model_mb": model.stat().st_size / MB,
        "idle_s": idle_s,
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        logs = Path(tmp)
        procs = {"edge": started.enter_context(edge_process(logs))}
        if args.compare_tree:
            procs["edge_before"] = started.enter_context(
                edge_process(logs, tree=args.compare_tree, name="edge_before")
            )
        procs["llamacpp_server"] = started.enter_context(llama_server_process(logs, model))
        time.sleep(1.0)  # let start-up work (logging, GC) settle before reading
        for name, proc in procs.items():
            figures[f"rss_mb_idle_{name}"] = rss_mb(proc.pid)
            figures[f"rss_anon_mb_idle_{name}"] = rss_mb(proc.pid, "RssAnon")
            figures[f"rss_file_mb_idle_{name}"] = rss_mb(proc.pid, "RssFile")
        before = {name: cpu_s(proc.pid) for name, proc in procs.items()}
        time.sleep(idle_s)
        for name, proc in procs.items():
            figures[f"idle_cpu_pct_{name}"] = (cpu_s(proc.pid) - before[name]) / idle_s * 100
        for name, proc in procs.items():
            if name == "llamacpp_server":
                stream_chat(
                    f"{proc.url}/v1",
                    [{"role": "user", "content": prompt(0)}],
                    max_tokens=64,
                    model=LLAMA_SERVER_ALIAS,
                )
            else:
                answer(proc.url, 0)
            figures[f"rss_mb_after_answer_{name}"] = rss_mb(proc.pid)
        figures["ratio_rss_idle_edge_vs_llamacpp_server"] = (
            figures["rss_mb_idle_edge"] / figures["rss_mb_idle_llamacpp_server"]
        )
        if args.compare_tree:
            figures["compare_tree"] = str(args.compare_tree)
            figures["ratio_rss_idle_edge_vs_edge_before"] = (
                figures["rss_mb_idle_edge"] / figures["rss_mb_idle_edge_before"]
            )
        if not args.no_budget:
            figures.update(budget_run(logs, procs["edge"].url, rounds))
    finish("footprint", figures, args.json)


def budget_run(logs: Path, free_edge_url: str, rounds: int) -> dict[str, Any]:
    """The edge on one core under a 1 GB cap, against the unconstrained edge (interleaved)."""
    out: dict[str, Any] = {}
    with memory_cgroup(1 << 30) as (kind, procs_file, peak_file):
        out["budget_memory_cap"] = kind
        out["budget_cores"] = 1
        # The shell joins the cgroup, then becomes the edge (pinned to core 0): the
        # edge's every byte is counted from its first instruction.
        preexec = ["taskset", "-c", "0"]
        if procs_file is not None:
            preexec = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs_file), *preexec]
        with edge_process(logs, preexec=preexec, name="edge_pi") as pi:
            timings: dict[str, list[StreamTiming]] = {"pi": [], "free": []}
            answer(pi.url, -1)
            for n in range(rounds):
                for key, url in (("pi", pi.url), ("free", free_edge_url)):
                    timings[key].append(answer(url, 100 + n))
            if peak_file is not None:
                out["budget_peak_memory_mb"] = int(peak_file.read_text()) / MB
            out["budget_rss_mb"] = rss_mb(pi.pid)
    for key, ts in timings.items():
        out[f"budget_ttft_ms_{key}"] = median([t.ttft_s * 1000 for t in ts])
        out[f"budget_tokens_per_s_{key}"] = median([t.tokens_per_s for t in ts])
    out["ratio_tokens_per_s_pi_vs_free"] = (
        out["budget_tokens_per_s_pi"] / out["budget_tokens_per_s_free"]
    )
    out["ratio_ttft_pi_vs_free"] = out["budget_ttft_ms_pi"] / out["budget_ttft_ms_free"]
    return out


if __name__ == "__main__":
    main()
