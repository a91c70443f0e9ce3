"""The Modal provider against the fake SDK (`longshot.testing.fake_modal`): what it asks of Modal.

The fake records every call; these tests check the image, resources, timeouts, network
policy, tags and terminations asked for, the orphan sweep after a crash, the translation
of SDK errors, the retry of a task whose container was lost, a whole run on "Modal", and
(with the real SDK installed) that every call matches the SDK's real signatures.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from longshot.budget import RunBudget
from longshot.build import build_model, local_options, modal_options
from longshot.config import load_config
from longshot.errors import ConfigError, SandboxError, SandboxLost, SandboxUnavailable, SetupFailed
from longshot.events import Bus, MemorySink, RunWarning
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.orchestrator import Orchestrator
from longshot.pipeline.dispatch import TaskRunner
from longshot.sandboxes.modal import ModalOptions, ModalSandboxProvider
from longshot.sandboxes.orphans import Owner, start_time
from longshot.testing.fake_modal import FakeModal
from longshot.testing.repos import git, make_remote
from longshot.tools.toolbox import ToolBox
from longshot.types import Task

from helpers import config_for
from provider_cases import CANARY_TOKEN, RUN_ID, make_hub

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="the fake runs its containers under bubblewrap")


def provider(tmp: Path, fake: FakeModal, owner: Owner | None = None, **options: Any) -> ModalSandboxProvider:
    return ModalSandboxProvider(tmp / "work", ModalOptions(**{"cpus": 1, "memory_mb": 512, **options}), RUN_ID,
                                sdk=fake, owner=owner)


def spec_for(hub: Path, base: str, task_id: str = "t1", setup: str | None = None) -> Any:
    from longshot.sandboxes.base import SandboxSpec

    return SandboxSpec(task_id=task_id, branch=f"worker/{task_id}-x", base_commit=base, hub=hub, setup=setup)


def dead_owner() -> Owner:
    """An orchestrator that ran on this host and is gone (a process that has exited)."""
    proc = subprocess.Popen(["sleep", "0"])
    started = start_time(proc.pid) or 1
    proc.wait()
    return Owner(socket.gethostname(), proc.pid, started)


async def test_the_settings_reach_modal(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    config = load_config({"GIT_REPO_URL": str(hub), "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_MODEL": "m",
                          "SANDBOX_PROVIDER": "modal", "SANDBOX_CPU_CORES": "2", "SANDBOX_MEMORY_MB": "3072",
                          "SANDBOX_IDLE_TIMEOUT": "240", "WORKER_TIMEOUT": "1200", "SANDBOX_SETUP_TIMEOUT": "600",
                          "MODAL_APP_NAME": "my-app", "MODAL_IMAGE": "python:3.12-slim"}, env_file=None)
    fake = FakeModal(tmp_path / "modal")
    p = ModalSandboxProvider(tmp_path / "work", modal_options(config, local_options(config)), RUN_ID, sdk=fake)
    async with p.open(spec_for(hub, base)) as sb:
        await sb.exec("true", 7.5)
    (lookup,) = fake.named("App.lookup")
    assert lookup.args == ("my-app",) and lookup.kwargs == {"create_if_missing": True}
    assert [(c.name, c.args) for c in fake.calls if c.name.startswith("Image.")] == [
        ("Image.from_registry", ("python:3.12-slim",))]
    (create,) = fake.named("Sandbox.create")
    assert {k: create.kwargs[k] for k in ("cpu", "memory", "idle_timeout", "timeout", "block_network")} == {
        "cpu": 2.0, "memory": 3072, "idle_timeout": 240, "timeout": 1200 + 600 + 300, "block_network": True}
    assert create.kwargs["tags"] == {"longshot": "1", "longshot-run": RUN_ID, "longshot-owner": p.owner.tag,
                                     "longshot-task": "t1"}
    command = fake.named("Sandbox.exec")[-1]
    assert command.args[:2] == ("bash", "-c") and command.args[-2:] == ("7.5", "true")
    assert command.kwargs["timeout"] == 18 and command.kwargs["workdir"] == "/workspace"
    assert [c.target for c in fake.named("Sandbox.terminate")] == ["sb-1"] and fake.running() == []


async def test_the_default_image_and_a_dockerfile(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    async with provider(tmp_path, fake).open(spec_for(hub, base)):
        pass
    image = fake.named("Sandbox.create")[0].kwargs["image"]
    assert image.recipe == [("debian_slim", ()), ("apt_install", ("git", "nodejs", "npm")), ("pip_install", ("pytest",))]
    assert fake.named("Image.debian_slim")[0].kwargs == {"python_version": "3.12"}
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN apt-get update && apt-get install -y git\n")
    async with provider(tmp_path, fake, image=str(dockerfile)).open(spec_for(hub, base, "t2")):
        pass
    assert fake.named("Image.from_dockerfile")[0].args == (str(dockerfile),)


async def test_a_setup_runs_with_network_in_its_own_container_frozen_into_the_task_s_image(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    p = provider(tmp_path, fake, setup_command="echo tools > $HOME/tools.txt")
    async with p.open(spec_for(hub, base, setup="echo deps > deps.txt")) as sb:
        r = await sb.exec("cat $HOME/tools.txt deps.txt", 30)
    assert r.stdout == "tools\ndeps\n"
    setup_box, task_box = fake.sandboxes
    assert setup_box.kwargs["block_network"] is False and task_box.kwargs["block_network"] is True
    names = [(c.name, c.target) for c in fake.calls if c.name in ("Sandbox.create", "Sandbox.snapshot_filesystem",
                                                                   "Sandbox.terminate")]
    assert names == [("Sandbox.create", ""), ("Sandbox.snapshot_filesystem", "sb-1"), ("Sandbox.terminate", "sb-1"),
                     ("Sandbox.create", ""), ("Sandbox.terminate", "sb-2")]
    assert task_box.kwargs["image"].recipe[-1] == ("snapshot_filesystem", ("sb-1",))
    setup_execs = [c for c in fake.named("Sandbox.exec") if c.target == "sb-1" and "deps.txt" in str(c.args)]
    assert setup_execs  # the set-up ran in the container with network

    with pytest.raises(SetupFailed):
        async with provider(tmp_path, fake, setup_command="exit 9").open(spec_for(hub, base, "t2")):
            pass
    assert fake.running() == []


async def test_network_on_is_one_container_with_network_and_says_so(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    p = provider(tmp_path, fake, network=True, setup_command="echo x > $HOME/x")
    assert p.describe().weakened and "network ON" in p.describe().description
    async with p.open(spec_for(hub, base)):
        pass
    assert [s.kwargs["block_network"] for s in fake.sandboxes] == [False]


async def test_a_lost_container_raises_sandbox_lost_and_is_still_terminated(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    with pytest.raises(SandboxLost, match="container is gone"):
        async with provider(tmp_path, fake).open(spec_for(hub, base)) as sb:
            await sb.exec("true", 10)
            fake.lose(fake.sandboxes[0])
            await sb.exec("true", 10)
    assert [c.target for c in fake.named("Sandbox.terminate")] == ["sb-1"]
    with pytest.raises(SandboxLost):  # Modal's own lifetime ran out
        async with provider(tmp_path, fake, lifetime=1).open(spec_for(hub, base, "t2")) as sb:
            await asyncio.sleep(1.5)
            await sb.read_file("README.md")


@pytest.mark.parametrize("call, error, ours", [
    ("App.lookup", "AuthError", ConfigError), ("Sandbox.create", "ConnectionError", SandboxUnavailable),
    ("Sandbox.create", "ResourceExhaustedError", SandboxUnavailable), ("Sandbox.exec", "SandboxTerminatedError", SandboxLost),
    ("Sandbox.exec", "InvalidError", SandboxError),
])
async def test_sdk_errors_become_ours(tmp_path: Path, call: str, error: str, ours: type[Exception]) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    fake.fail_next(call, getattr(fake.exception, error)("from the fake"))
    with pytest.raises(ours) as raised:
        async with provider(tmp_path, fake).open(spec_for(hub, base)) as sb:
            await sb.exec("true", 10)
    assert type(raised.value) is ours and "from the fake" in str(raised.value)
    if ours is ConfigError:
        assert "MODAL_TOKEN_ID" in str(raised.value)
    assert fake.running() == []


async def test_a_run_after_a_crash_terminates_the_crashed_run_s_containers_only(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")
    crashed = provider(tmp_path, fake, owner=dead_owner()).open(spec_for(hub, base, "old"))
    await crashed.__aenter__()  # never left: its orchestrator was SIGKILLed
    elsewhere = provider(tmp_path, fake, owner=Owner("another-host", 1, 1)).open(spec_for(hub, base, "far"))
    await elsewhere.__aenter__()
    current = provider(tmp_path, fake)
    async with current.open(spec_for(hub, base, "mine")):
        swept = await current.sweep_orphans()
        assert len(swept) == 1 and "sb-1" in swept[0] and "task old" in swept[0]
        assert [s.object_id for s in fake.running()] == ["sb-2", "sb-3"]
        assert await current.sweep_orphans() == []
    await elsewhere.__aexit__(None, None, None)
    assert fake.running() == []


class LosingHarness:
    """Attempt 1 loses its container mid-task; later attempts write a file and hand off."""

    def __init__(self, fake: FakeModal, lose_every_time: bool = False) -> None:
        self.fake = fake
        self.attempts = 0
        self.lose_every_time = lose_every_time

    async def run(self, task: Task, sandbox: Any) -> HarnessResult:
        self.attempts += 1
        tools = ToolBox(sandbox)
        assert (await tools.call("write", json.dumps({"path": "work.txt", "content": "attempt\n"}))).ok
        if self.attempts == 1 or self.lose_every_time:
            self.fake.lose(self.fake.running()[-1])
            await tools.call("bash", json.dumps({"command": "cat work.txt"}))  # raises: not a tool error
            raise AssertionError("a lost sandbox must not be reported to the model as a tool error")
        return HarnessResult(status="complete", summary="done on attempt 2")


async def test_a_task_whose_container_is_lost_starts_again_in_a_new_one(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"README.md": "x\n"})
    hub = Hub(tmp_path / "hub", str(remote), "main", ("Longshot", "l@localhost"))
    await hub.open()
    fake = FakeModal(tmp_path / "modal")
    events: list[Any] = []
    harness = LosingHarness(fake)
    runner = TaskRunner(hub, provider(tmp_path, fake), harness, events.append, timeout=60)
    handoff = await runner.run(Task(id="t1", description="d", branch="worker/t1-x"))
    assert handoff.status == "complete" and harness.attempts == 2
    assert git("show", "refs/heads/worker/t1-x:work.txt", cwd=hub.path) == "attempt"
    assert any(isinstance(e, RunWarning) and e.code == "sandbox.retry" and "again in a new sandbox (attempt 2 of 3)" in e.message
               for e in events)
    assert len(fake.sandboxes) == 2 and fake.running() == []


def test_the_real_sdk_accepts_every_call_the_adapter_makes(tmp_path: Path) -> None:
    modal = pytest.importorskip("modal", reason="the modal SDK is not installed (pip install -e '.[modal]')")
    hub, base = make_hub(tmp_path)
    fake = FakeModal(tmp_path / "modal")

    async def lifecycle() -> None:
        p = provider(tmp_path, fake, setup_command="true")
        async with p.open(spec_for(hub, base)) as sb:
            await sb.exec("echo hi > a.txt", 10)
            await sb.write_file("b.txt", b"b")
            await sb.read_file("b.txt")
            await sb.list_dir("")
            await sb.snapshot("m")
            await p.sweep_orphans()  # lists and reads the tags of the sandbox still running

    asyncio.run(lifecycle())
    real = {"App.lookup": modal.App.lookup, "Sandbox.create": modal.Sandbox.create, "Sandbox.list": modal.Sandbox.list,
            "Image.debian_slim": modal.Image.debian_slim, "Image.apt_install": modal.Image.apt_install,
            "Image.pip_install": modal.Image.pip_install, "Sandbox.exec": modal.Sandbox.exec,
            "Sandbox.terminate": modal.Sandbox.terminate, "Sandbox.get_tags": modal.Sandbox.get_tags,
            "Sandbox.snapshot_filesystem": modal.Sandbox.snapshot_filesystem}
    methods = {"Image.apt_install", "Image.pip_install", "Sandbox.exec", "Sandbox.terminate", "Sandbox.get_tags",
               "Sandbox.snapshot_filesystem"}
    assert {c.name for c in fake.calls} == set(real)
    for call in fake.calls:
        args = ("self", *call.args) if call.name in methods else call.args
        inspect.signature(real[call.name]).bind(*args, **call.kwargs)  # raises TypeError on a wrong call


def test_a_whole_run_on_modal_cleans_up_after_a_crashed_run_and_sends_no_credential(tmp_path: Path, fake_llm) -> None:
    from helpers import plan_json, planner_then_done, worker_steps
    from longshot.testing.fake_script import RoleScript

    target = make_remote(tmp_path, {"calc/__init__.py": "", "tests/test_smoke.py": "def test_smoke():\n    import calc\n"})
    tasks = [{"id": "t1", "description": "Add calc/add.py and its test.", "scope": ["calc/add.py"]}]
    workers = {"t1": worker_steps([("calc/add.py", "def add(a, b):\n    return a + b\n"),
                                   ("tests/test_add.py", "from calc.add import add\n\ndef test_add():\n    assert add(1, 2) == 3\n")],
                                  f"{sys.executable} -m pytest -q -p no:cacheprovider")}
    llm = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))
    config = config_for(tmp_path, target, llm, SANDBOX_PROVIDER="modal", GIT_REPO_URL=str(target))
    fake = FakeModal(tmp_path / "modal")
    memory = MemorySink()
    bus = Bus("run-modal-e2e", [memory])

    async def run() -> int:
        hub = Hub(Hub.location(config.longshot_work_dir.resolve(), config.git_repo_url), str(target), "main",
                  ("Longshot", "l@localhost"))
        await hub.open()
        crashed = ModalSandboxProvider(tmp_path / "old", ModalOptions(), "run-crashed", sdk=fake, owner=dead_owner())
        # Entered and never left, as by a process that died; the reference keeps the garbage
        # collector from closing it (which a dead process would not do either).
        orphan = crashed.open(spec_for(hub.path, await hub.tip(), "old-task"))
        await orphan.__aenter__()
        budget = RunBudget()
        model = build_model(config, bus, budget)
        p = ModalSandboxProvider(config.longshot_work_dir.resolve(), modal_options(config, local_options(config)),
                                 bus.run_id, sdk=fake)
        try:
            return (await Orchestrator(config, bus, model, p, budget).run("add add")).exit_code
        finally:
            await model.aclose()
            del orphan

    assert asyncio.run(run()) == 0
    warnings = [e.message for e in memory.events if isinstance(e, RunWarning)]
    assert any("sb-1" in w and "run-crashed" in w for w in warnings), warnings
    assert fake.running() == [] and len(fake.sandboxes) >= 3  # the orphan, the worker, the gate or a sweep
    assert git("show", "main:calc/add.py", cwd=target).startswith("def add")
    sent = fake.transcript()
    assert "sk-test" not in sent and CANARY_TOKEN not in sent


async def test_checks_whose_container_is_lost_run_again_in_a_new_one(tmp_path: Path) -> None:
    from longshot.pipeline.checks import configured_plan, run_commands

    remote = make_remote(tmp_path, {"README.md": "x\n"})
    hub = Hub(tmp_path / "hub", str(remote), "main", ("Longshot", "l@localhost"))
    tip = await hub.open()
    fake = FakeModal(tmp_path / "modal")
    fake.fail_next("Sandbox.exec", fake.exception.SandboxTerminatedError("worker preempted"))
    events: list[Any] = []
    results = await run_commands(provider(tmp_path, fake), hub, tip, configured_plan(["cat README.md"]), timeout=30,
                                 branch="worker/gate", label="gate-t1", emit=events.append)
    assert results["cat README.md"].exit_code == 0 and "x" in results["cat README.md"].output_tail
    assert [e.message for e in events if isinstance(e, RunWarning)] == [
        "checks (gate-t1): unpacking the base commit in the sandbox of gate-t1 (the container is gone): "
        "SandboxTerminatedError: worker preempted; running them again in a new sandbox (attempt 2 of 3)"]
    assert len(fake.sandboxes) == 2 and fake.running() == []
