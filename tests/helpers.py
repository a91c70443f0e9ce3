"""Helpers for tests: the environment of a run, running the CLI, reading the run log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from longshot.config import Config, load_config
from longshot.events import Event, read_events
from longshot.hub import Hub
from longshot.testing.repos import git, make_remote
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply, Script, ToolCallSpec, Turn

MODELS = {"fake-planner": "planner", "fake-worker": "worker", "fake-reconciler": "reconciler",
          "fake-subplanner": "subplanner"}


def run_env(tmp_path: Path, remote: Path, fake: FakeLLM, **extra: str) -> dict[str, str]:
    """The environment of a run against ``remote`` and ``fake`` (nothing else is read)."""
    env = {
        "GIT_REPO_URL": str(remote), "LLM_BASE_URL": fake.base_url, "LLM_API_KEY": "sk-test",
        "LLM_MODEL": "fake-worker", "PLANNER_MODEL": "fake-planner", "WORKER_MODEL": "fake-worker",
        "SUBPLANNER_MODEL": "fake-subplanner", "RECONCILER_MODEL": "fake-reconciler",
        "LONGSHOT_WORK_DIR": str(tmp_path / "work"), "LONGSHOT_LOG_DIR": str(tmp_path / "logs"),
        "CHECK_COMMANDS": json.dumps([f"{sys.executable} -m pytest -q -p no:cacheprovider"]),
    }
    env.update(extra)
    return env


def config_for(tmp_path: Path, remote: Path, fake: FakeLLM, **extra: str) -> Config:
    return load_config(run_env(tmp_path, remote, fake, **extra), env_file=None)


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m longshot ARGS`` in a subprocess with exactly ``env`` (plus PATH and HOME)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env}
    return subprocess.run([sys.executable, "-m", "longshot", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_log(tmp_path: Path) -> list[Event]:
    logs = sorted((tmp_path / "logs").glob("run-*.ndjson"))
    assert logs, "no run log written"
    return list(read_events(logs[-1]))


def plan_json(tasks: list[dict[str, object]], scratchpad: str = "notes") -> str:
    return json.dumps({"scratchpad": scratchpad, "tasks": tasks})


def planner_then_done(*answers: str) -> Script:
    """A planner that gives ``answers`` in turn, then ``"tasks": []`` forever."""

    def play(turn: Turn) -> Reply:
        if turn.turn < len(answers):
            return Reply(content=answers[turn.turn])
        return Reply(content=plan_json([], "done"))

    return play


def worker_steps(writes: list[tuple[str, str]], command: str | None = None, *, status: str = "complete",
                 summary: str = "done", concerns: list[str] | None = None, delay: float = 0.0) -> list[Reply]:
    """Replies of a worker that writes files, runs a command, and hands off."""
    steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": p, "content": c})], delay=delay) for p, c in writes]
    if command:
        steps.append(Reply(tool_calls=[ToolCallSpec("bash", {"command": command})], delay=delay))
    steps.append(Reply(tool_calls=[ToolCallSpec("handoff", {
        "status": status, "summary": summary, "concerns": concerns or [], "suggestions": []})], delay=delay))
    return steps


def last_tool_result(messages: list[dict[str, object]]) -> str:
    return next(str(m["content"]) for m in reversed(messages) if m.get("role") == "tool")


def run_inprocess(tmp_path: Path, remote: Path, fake: FakeLLM, request: str = "do it", **extra: str) -> int:
    """A whole run in this process (faster than the CLI); returns the exit code."""
    from longshot.cli import execute

    return execute(config_for(tmp_path, remote, fake, **extra), request)


async def hub_and_scratch(tmp_path: Path, files: dict[str, str]) -> tuple[Hub, Path, str]:
    """A remote holding ``files``, the hub over it (opened), a scratch clone to make commits in,
    and the base commit."""
    remote = make_remote(tmp_path, files)
    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=("Longshot", "longshot@localhost"))
    base = await hub.open()
    scratch = tmp_path / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=tmp_path)
    return hub, scratch, base


def push_work(hub: Hub, scratch: Path, task_id: str, files: dict[str, str], on: str) -> str:
    """A task's commit on ``on`` changing ``files``, made in ``scratch`` and pushed to the hub as
    ``worker/<task_id>``; returns it."""
    git("checkout", "--quiet", "--detach", on, cwd=scratch)
    for path, text in files.items():
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / path).write_text(text)
    git("add", "--all", cwd=scratch)
    git("commit", "--quiet", "-m", f"Work on {task_id}\n\nLongshot-Task: {task_id}", cwd=scratch)
    sha = git("rev-parse", "HEAD", cwd=scratch)
    git("push", "--quiet", str(hub.path), f"{sha}:refs/heads/worker/{task_id}", cwd=scratch)
    return sha
