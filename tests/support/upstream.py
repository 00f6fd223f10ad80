"""A real OpenAI-compatible engine on loopback: ``python -m llama_cpp.server`` (the
``[server]`` extra of llama-cpp-python) serving the bundled GGUF, as a worker's
``--backend openai`` upstream. It stands where vLLM, SGLang or llama-server stand on a
GPU machine; tests start, kill and restart it like any process a user runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devstack.stack import free_port
from tests.support.model import model_path
from tests.support.wait import wait_until

ALIAS = "smollm2-135m"
"""The model name the engine serves (``--model_alias``), as a worker advertises it."""


@dataclass
class Upstream:
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL, as ``--upstream-url`` takes it."""
        return f"http://127.0.0.1:{self.port}/v1"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def start(self) -> None:
        """Start the engine and wait until it answers (loading the model takes seconds)."""
        self._out = self.log.open("ab")
        argv = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()),
            "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--interrupt_requests", "False",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out
        )
        proc = self.proc

        def up() -> bool:
            assert proc.poll() is None, f"the engine exited: {self.log.read_text()[-2000:]}"
            return self.answers()

        wait_until(up, timeout_s=120, what=f"llama_cpp.server answering on {self.url}")

    def kill(self) -> None:
        """SIGKILL, as a crashed engine (or an OOM kill) looks from the worker."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None


@contextmanager
def upstream_server(log_dir: Path, *, start: bool = True) -> Iterator[Upstream]:
    """An engine on a free port (running unless ``start=False``), stopped on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = Upstream(port=free_port(), log=log_dir / "upstream.log")
    try:
        if start:
            engine.start()
        yield engine
    finally:
        engine.stop()
