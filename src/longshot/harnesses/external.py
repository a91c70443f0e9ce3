"""External agent CLIs as harnesses (``WORKER_HARNESS``), run headless inside the sandbox.

Each agent is described as data in ``agents.json``: an argv template, the environment it
needs, and the API it speaks. The agent reaches the model only through the `ModelProxy`
on a Unix socket bound into the sandbox (a forwarder inside makes it a loopback URL); the
API key stays in the orchestrator. The agent's own commands run in the same sandbox as
every other command. The handoff is built from the agent's exit, its trajectory (where it
writes one) and, as always, the diff measured by the orchestrator.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from longshot.errors import ConfigError
from longshot.events import Emit, WorkerStep
from longshot.harnesses.base import HarnessResult
from longshot.harnesses.proxy import FORWARDER, ModelProxy
from longshot.llm.base import ChatModel
from longshot.prompts import Prompts
from longshot.sandboxes.base import Sandbox
from longshot.types import HandoffStatus, Task

PORT = 18080
OUT = ".longshot/trajectory.json"


@dataclass(frozen=True)
class AgentSpec:
    name: str
    bin: str
    endpoint: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    install: str = ""


def agent_specs() -> dict[str, AgentSpec]:
    data = json.loads(files("longshot.harnesses").joinpath("agents.json").read_text())
    return {name: AgentSpec(name=name, **spec) for name, spec in data.items() if not name.startswith("_")}


def load_agent(name: str) -> AgentSpec:
    """The spec of ``WORKER_HARNESS=name``, or a ConfigError saying what is possible."""
    specs = agent_specs()
    if name not in specs:
        raise ConfigError(f"WORKER_HARNESS: unknown harness {name!r}. Fix: use builtin or one of {', '.join(specs)}.")
    spec = specs[name]
    if spec.endpoint != "chat-completions":
        raise ConfigError(
            f"WORKER_HARNESS: {name} needs an {spec.endpoint} endpoint, and Longshot's model proxy speaks "
            "chat-completions only. Fix: use builtin, mini-swe-agent, aider or opencode, or put a translating "
            "gateway in front of your model and run the agent yourself.")
    return spec


class ExternalHarness:
    """Runs one agent CLI per task, talking to the model through the proxy."""

    def __init__(self, spec: AgentSpec, model: ChatModel, prompts: Prompts, emit: Emit, *,
                 model_name: str, executable: str | None = None, timeout: float = 1800.0) -> None:
        self.spec = spec
        self.model = model
        self.prompts = prompts
        self.emit = emit
        self.model_name = model_name
        self.executable = executable or spec.bin
        self.timeout = timeout

    def command(self, task_text: str, inside_socket: str) -> str:
        base_url = f"http://127.0.0.1:{PORT}/v1"
        values = {"bin": self.executable, "model": self.model_name, "task": task_text, "out": OUT,
                  "base_url": base_url, "base_url_root": base_url.removesuffix("/v1")}
        argv = [part.format(**values) for part in self.spec.argv]
        env = [f"{k}={v.format(**values)}" for k, v in self.spec.env.items()]
        forwarder = shlex.join(["python3", "-c", FORWARDER, inside_socket, str(PORT)])
        return (f"mkdir -p .longshot && ({forwarder} >/dev/null 2>&1 &) && "
                f"for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null && break; sleep 0.1; done; "
                f"env {shlex.join(env)} {shlex.join(argv)} </dev/null")

    async def run(self, task: Task, sandbox: Sandbox) -> HarnessResult:
        host_socket, inside_socket = sandbox.socket_path("llm.sock")
        task_text = self.prompts.render("worker_task", task=task)
        async with ModelProxy(self.model, host_socket, task.id, self.model_name) as proxy:
            result = await sandbox.exec(self.command(task_text, inside_socket), self.timeout)
        self.emit(WorkerStep(task_id=task.id, step=proxy.requests, tool=self.spec.name, ok=result.exit_code == 0,
                             detail=f"exit {result.exit_code}, {proxy.requests} model requests"))
        trajectory = await self._trajectory(sandbox)
        return self._result(result.exit_code, result.stdout + result.stderr, trajectory, proxy.requests)

    async def _trajectory(self, sandbox: Sandbox) -> dict[str, Any]:
        try:
            data = json.loads(await sandbox.read_file(OUT))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _result(self, code: int, output: str, trajectory: dict[str, Any], requests: int) -> HarnessResult:
        info = trajectory.get("info", {}) if isinstance(trajectory.get("info"), dict) else {}
        exit_status = str(info.get("exit_status") or "")
        messages = trajectory.get("messages") or []
        last = next((str(m.get("content")) for m in reversed(messages)
                     if isinstance(m, dict) and m.get("role") == "assistant" and m.get("content")), "")
        calls = sum(len(m.get("tool_calls") or []) for m in messages if isinstance(m, dict))
        status: HandoffStatus
        if code == 0 and exit_status in ("", "Submitted"):
            status = "complete"
        elif requests == 0:
            status = "failed"
        else:
            status = "partial"
        summary = last or f"{self.spec.name} exited with {code}" + (f" ({exit_status})" if exit_status else "")
        concerns = [] if status == "complete" else [
            f"{self.spec.name} exited with code {code}" + (f", status {exit_status}" if exit_status else "")
            + f"; output ends: {output.strip()[-500:]}"]
        return HarnessResult(status=status, summary=summary[:4000], concerns=concerns, tool_calls=calls or requests,
                             steps=requests)
