"""The Ray provider on a real local cluster (started once per session by `ray_cluster`).

Beyond the contract: no credential in the cluster's processes or the actor's files,
resources asked of Ray per sandbox, a killed actor and a really removed node (on a second,
throw-away cluster) failing the attempt with the task run again, orphans of a dead
orchestrator swept, and nothing left running after a SIGKILLed orchestrator.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from longshot.build import build_provider
from longshot.config import load_config
from longshot.errors import ConfigError
from longshot.events import RunWarning
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.dispatch import TaskRunner
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.orphans import Owner, start_time
from longshot.sandboxes.ray_node import NODE_PREFIX
from longshot.testing.repos import git, make_remote
from longshot.tools.toolbox import ToolBox
from longshot.types import Task

from provider_cases import CANARY_TOKEN, RAY_CANARY, RUN_ID, local_options, make_hub

pytestmark = pytest.mark.usefixtures("ray_cluster")


def ray_provider(tmp: Path, owner: Owner | None = None, **options: Any) -> Any:
    from longshot.sandboxes.ray import RayOptions, RaySandboxProvider

    return RaySandboxProvider(tmp / "work", RayOptions(**{"cpus": 1, "memory_mb": 256, "local": local_options(),
                                                          **options}), RUN_ID, owner=owner)


def spec_for(hub: Path, base: str, task_id: str = "t1") -> SandboxSpec:
    return SandboxSpec(task_id=task_id, branch=f"worker/{task_id}-x", base_commit=base, hub=hub)


def wait_for(predicate: Any, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


async def test_the_cluster_and_the_actor_hold_no_credential(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    async with ray_provider(tmp_path).open(spec_for(hub, base)) as sb:
        await sb.exec("echo work > work.txt", 30)
        info = await sb.probe()
        raylet = int(info["environ"]["RAY_RAYLET_PID"])
        raylet_env = Path(f"/proc/{raylet}/environ").read_bytes()
        actor_env = Path(f"/proc/{info['pid']}/environ").read_bytes()
        files = subprocess.run(["grep", "-rl", "-e", RAY_CANARY, "-e", CANARY_TOKEN, info["root"]],
                               capture_output=True, text=True)
    assert "PATH" in info["environ"] and b"PATH=" in raylet_env  # these really are the environments
    assert RAY_CANARY not in json.dumps(info["environ"])
    assert RAY_CANARY.encode() not in raylet_env and RAY_CANARY.encode() not in actor_env
    assert files.returncode == 1 and files.stdout == ""  # grep ran and found nothing


async def test_each_sandbox_asks_ray_for_its_cpu_and_memory(tmp_path: Path, ray_cluster: Any) -> None:
    hub, base = make_hub(tmp_path)
    total = ray_cluster.cluster_resources()

    def idle() -> bool:
        free = ray_cluster.available_resources()
        return free.get("CPU") == total["CPU"] and free.get("memory") == total["memory"]

    assert wait_for(idle)  # actors of earlier tests have given their share back
    async with ray_provider(tmp_path, memory_mb=300).open(spec_for(hub, base)):
        during = ray_cluster.available_resources()
    assert total["CPU"] - during.get("CPU", 0) == 1
    assert total["memory"] - during["memory"] == 300 * 2**20
    assert wait_for(idle)


def test_sizes_no_node_can_hold_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SANDBOX_CPU_CORES"):
        ray_provider(tmp_path, cpus=512)
    with pytest.raises(ConfigError, match="SANDBOX_MEMORY_MB"):
        ray_provider(tmp_path, memory_mb=2**30)


def test_default_sizes_no_node_can_hold_are_fitted_to_the_largest_node_and_said(tmp_path: Path, ray_cluster) -> None:
    """Issue 18 item 9: a default that cannot work is adapted; an explicit value is refused (above)."""
    largest = max(n["Resources"].get("CPU", 0) for n in ray_cluster.nodes() if n.get("Alive"))
    provider = ray_provider(tmp_path, cpus=largest + 2, fit=(True, True), memory_mb=2**30)
    assert provider.options.cpus == largest and provider.options.memory_mb < 2**30
    notes = provider.describe().adapted
    assert any(n.startswith("SANDBOX_CPU_CORES: the default") and f"using {largest:g}" in n for n in notes)
    assert any(n.startswith("SANDBOX_MEMORY_MB: the default") for n in notes)


class ActorKillingHarness:
    """Attempt 1 kills its actor's process (as a lost node would); attempt 2 finishes."""

    def __init__(self) -> None:
        self.attempts = 0
        self.killed: list[int] = []

    async def run(self, task: Task, sandbox: Any) -> HarnessResult:
        self.attempts += 1
        tools = ToolBox(sandbox)
        assert (await tools.call("write", json.dumps({"path": "work.txt", "content": f"{self.attempts}\n"}))).ok
        if self.attempts == 1:
            pid = (await sandbox.probe())["pid"]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)
            await tools.call("bash", json.dumps({"command": "cat work.txt"}))
            raise AssertionError("a lost actor must not be reported to the model as a tool error")
        return HarnessResult(status="complete", summary="done")


async def test_a_lost_actor_fails_the_attempt_and_the_task_runs_again(tmp_path: Path, ray_cluster: Any) -> None:
    remote = make_remote(tmp_path, {"README.md": "x\n"})
    hub = Hub(tmp_path / "hub", str(remote), "main", ("Longshot", "l@localhost"))
    await hub.open()
    events: list[Any] = []
    harness = ActorKillingHarness()
    runner = TaskRunner(hub, ray_provider(tmp_path), harness, events.append, timeout=120)
    handoff = await runner.run(Task(id="t1", description="d", branch="worker/t1-x"))
    assert handoff.status == "complete" and harness.attempts == 2
    assert git("show", "refs/heads/worker/t1-x:work.txt", cwd=hub.path) == "2"
    lost = [e.message for e in events if isinstance(e, RunWarning)]
    assert len(lost) == 1 and "actor or its node is gone" in lost[0] and "attempt 2 of 3" in lost[0]
    assert ray_cluster.util.list_named_actors(all_namespaces=True) == []
    assert not list(Path(tempfile.gettempdir()).glob(f"{NODE_PREFIX}{harness.killed[0]}-*"))  # its node was swept


async def test_the_actors_of_a_dead_orchestrator_are_swept_and_no_others(tmp_path: Path, ray_cluster: Any) -> None:
    hub, base = make_hub(tmp_path)
    proc = subprocess.Popen(["sleep", "0"])
    started = start_time(proc.pid) or 1
    proc.wait()
    crashed = ray_provider(tmp_path / "a", owner=Owner(os.uname().nodename, proc.pid, started))
    orphan = crashed.open(spec_for(hub, base, "old"))
    sandbox = await orphan.__aenter__()  # never left: its orchestrator was SIGKILLed
    orphan_pid = (await sandbox.probe())["pid"]
    current = ray_provider(tmp_path / "b")
    async with current.open(spec_for(hub, base, "mine")) as mine:
        actors = [line for line in await current.sweep_orphans() if line.startswith("Ray actor")]
        assert len(actors) == 1 and ":old-1" in actors[0] and RUN_ID in actors[0]
        assert wait_for(lambda: start_time(orphan_pid) is None)
        assert (await mine.exec("echo still here", 30)).stdout == "still here\n"
        assert await current.sweep_orphans() == []
    assert ray_cluster.util.list_named_actors(all_namespaces=True) == []


DRIVER = """
import asyncio, sys
from pathlib import Path
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions
from longshot.sandboxes.ray import RayOptions, RaySandboxProvider

async def main():
    hub, base, work = Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    provider = RaySandboxProvider(work, RayOptions(address=sys.argv[1], cpus=1, memory_mb=256), "run-doomed")
    async with provider.open(SandboxSpec(task_id="t9", branch="worker/t9", base_commit=base, hub=hub)) as sb:
        print((await sb.probe())["pid"], flush=True)
        await sb.exec("sleep 987654", 600)

asyncio.run(main())
"""


def test_after_a_sigkilled_orchestrator_nothing_of_its_sandboxes_keeps_running(tmp_path: Path, ray_cluster: Any) -> None:
    hub, base = make_hub(tmp_path)
    address = ray_cluster.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}  # the session cluster's token
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, address, str(hub), base, str(tmp_path / "work")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert driver.stdout is not None
        actor_pid = int(driver.stdout.readline())
        assert wait_for(lambda: bool(_pgrep("sleep 987654")))
    finally:
        driver.kill()
        driver.wait()
    assert wait_for(lambda: start_time(actor_pid) is None)  # Ray ends the actors of a dead driver
    assert wait_for(lambda: ray_cluster.util.list_named_actors(all_namespaces=True) == [])
    # Its sandbox may outlive it (bubblewrap's parent-death signal does not always fire when Ray
    # kills an actor); the next run's sweep kills what still runs and removes the directory.
    swept = asyncio.run(ray_provider(tmp_path / "next").sweep_orphans())
    assert any(f"{NODE_PREFIX}{actor_pid}-" in line for line in swept), swept
    assert wait_for(lambda: not _pgrep("sleep 987654"), 5)
    assert not list(Path(tempfile.gettempdir()).glob(f"{NODE_PREFIX}{actor_pid}-*"))


def test_remote_providers_refuse_harnesses_that_need_a_local_socket(tmp_path: Path) -> None:
    hub, _ = make_hub(tmp_path)
    for kind in ("ray", "modal"):
        config = load_config({"GIT_REPO_URL": str(hub), "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_MODEL": "m",
                              "SANDBOX_PROVIDER": kind, "WORKER_HARNESS": "mini-swe-agent"}, env_file=None)
        with pytest.raises(ConfigError, match="WORKER_HARNESS.*builtin"):
            build_provider(config, RUN_ID)


def _pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


NODE_LOSS = """
import asyncio, json, sys
from pathlib import Path
from ray.cluster_utils import Cluster
import ray
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.dispatch import TaskRunner
from longshot.sandboxes.local import LocalOptions
from longshot.sandboxes.ray import RayOptions, RaySandboxProvider
from longshot.types import Task

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
doomed = cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, log_to_driver=False)
cluster.wait_for_nodes()

class Harness:
    attempts = 0
    async def run(self, task, sandbox):
        self.attempts += 1
        if self.attempts == 1:  # the node this task runs on goes away mid-command
            asyncio.get_running_loop().call_later(1.0, lambda: (cluster.remove_node(doomed), cluster.add_node(num_cpus=1)))
            await sandbox.exec("sleep 876543", 120)
        await sandbox.write_file("done.txt", b"on another node")
        return HarnessResult(status="complete", summary="done")

async def main():
    hub = Hub(Path(sys.argv[2]), sys.argv[1], "main", ("Longshot", "l@localhost"))
    await hub.open()
    events = []
    provider = RaySandboxProvider(Path(sys.argv[3]), RayOptions(cpus=1, memory_mb=256), "run-node-loss")
    harness = Harness()
    handoff = await TaskRunner(hub, provider, harness, events.append, timeout=120).run(
        Task(id="t1", description="d", branch="worker/t1-x"))
    print(json.dumps({"status": handoff.status, "attempts": harness.attempts,
                      "warnings": [e.message for e in events]}), flush=True)

try:
    asyncio.run(main())
finally:
    ray.shutdown()
    cluster.shutdown()
"""


def test_a_node_lost_mid_task_fails_that_attempt_and_the_task_runs_again_on_another(tmp_path: Path) -> None:
    """A real node removed from a (second, throw-away) cluster while its sandbox runs a command."""
    remote = make_remote(tmp_path, {"README.md": "x\n"})
    done = subprocess.run([sys.executable, "-c", NODE_LOSS, str(remote), str(tmp_path / "hub"), str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "complete" and outcome["attempts"] == 2
    (warning,) = outcome["warnings"]
    assert "actor or its node is gone" in warning and "attempt 2 of 3" in warning
    assert git("show", "refs/heads/worker/t1-x:done.txt", cwd=tmp_path / "hub") == "on another node"
    assert wait_for(lambda: not _pgrep("sleep 876543"), 5)  # nothing of the lost node's command keeps running
