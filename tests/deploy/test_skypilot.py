"""``deploy/skypilot/worker.yaml``: SkyPilot's own parser accepts it, and the worker
command its ``run`` script ends in starts a real worker in front of a real engine.

SkyPilot lives in a venv of its own (``.venv-sky``, made by ``make test``), as on a
user's laptop; it needs no cloud account to load a task. The run line is taken from the
YAML as written, its variables filled the way SkyPilot fills them (``envs``, secrets),
with only what points at this machine changed: the engine's port and signaling's URL.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.stack import Stack, StackConfig, free_port
from shared.messages import Role
from tests.support.apps import serving
from tests.support.metadata import Notice, metadata_app
from tests.support.upstream import upstream_server
from tests.support.wait import eventually

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "deploy" / "skypilot" / "worker.yaml"
SKY_PYTHON = REPO / ".venv-sky" / "bin" / "python"

LOAD = """
import json, sys, yaml, sky
config = yaml.safe_load(open(sys.argv[1]))
task = sky.Task.from_yaml_config(config, secrets_overrides=[("TANDEM_TOKEN", "a-token")])
print(json.dumps({
    "name": task.name,
    "spot": sorted({r.use_spot for r in task.resources}),
    "accelerators": sorted(a for r in task.resources for a in (r.accelerators or {})),
    "secrets": sorted(task.secrets),
    "envs": task.envs,
    "workdir": task.workdir,
}))
"""


def sky_python() -> Path:
    if not SKY_PYTHON.exists():
        why = "SkyPilot is not installed in .venv-sky (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return SKY_PYTHON


def test_skypilot_accepts_the_worker_task() -> None:
    result = subprocess.run(
        [str(sky_python()), "-c", LOAD, str(TASK)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    task = json.loads(result.stdout.strip().splitlines()[-1])
    assert task["name"] == "tandem-worker"
    assert task["spot"] == [True], "every alternative is a spot instance"
    assert {"L4", "A10G"} <= set(task["accelerators"])
    assert "TANDEM_TOKEN" in task["secrets"]
    assert {"MODEL", "TANDEM_SIGNALING", "ENGINE_PORT", "MAX_CONCURRENCY"} <= set(task["envs"])


def worker_command(task: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The ``exec cloud-worker serve ...`` line of the run script, variables filled."""
    [line] = [ln for ln in task["run"].splitlines() if ln.startswith("exec cloud-worker serve")]
    out = []
    for arg in shlex.split(line)[1:]:
        for name, value in env.items():
            arg = arg.replace(f"${name}", value).replace(f"${{{name}}}", value)
        assert "$" not in arg, f"an unset variable in the run line: {arg}"
        out.append(arg)
    return out


async def test_the_run_line_starts_a_worker_in_front_of_the_engine(tmp_path: Path) -> None:
    task = yaml.safe_load(TASK.read_text())
    assert "vllm serve" in task["run"] and "--backend openai" in task["run"]
    stack = Stack(StackConfig(signaling_port=free_port(), log_dir=tmp_path))
    notice = Notice()
    with upstream_server(tmp_path) as engine:
        async with serving(metadata_app(notice, "gcp")) as metadata_port:
            try:
                stack.start_signaling()
                env = {
                    **{k: str(v) for k, v in task["envs"].items()},
                    "ENGINE_PORT": str(engine.port),  # where the engine listens here
                    "TANDEM_SIGNALING": stack.signaling_url,
                }
                argv = worker_command(task, env)
                worker_port = free_port()
                proc = subprocess.Popen(  # noqa: ASYNC220 (starting, not waiting)
                    [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
                    env={
                        **os.environ,
                        "TANDEM_TOKEN": stack.token(Role.WORKER, "gpu-1"),
                        "TANDEM_PORT": str(worker_port),
                        "TANDEM_SPOT_METADATA_URL": f"http://127.0.0.1:{metadata_port}",
                    },
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp_path / "worker.log").open("wb"),
                )
                stack.procs["worker"] = proc
                signaling = f"http://127.0.0.1:{stack.config.signaling_port}/healthz"

                def registered() -> bool:
                    assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                    with urllib.request.urlopen(signaling, timeout=5) as resp:
                        return bool(json.loads(resp.read())["workers"] == 1)

                await eventually(registered, timeout_s=120, what="the worker registered")

                def logged(line: str) -> bool:
                    return line in (tmp_path / "worker.log").read_text()

                # The spot watch starts beside the signaling link: its line may come after
                # the worker has registered.
                await eventually(
                    lambda: logged("(gcp) for spot preemption notices"),
                    timeout_s=120,
                    what="--spot auto found the cloud",
                )
                assert logged("streams resumed by")
            finally:
                stack.stop()
    assert proc.returncode == 0, "SIGTERM drains and exits 0"
