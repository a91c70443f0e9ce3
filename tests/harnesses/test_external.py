"""mini-swe-agent as the worker harness, for real, against the fake model through the
socket proxy: the task lands, and the API key never enters the sandbox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from longshot.errors import ConfigError
from longshot.harnesses.external import agent_specs, load_agent
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import last_tool_result, plan_json, planner_then_done, run_cli, run_env

ROOT = Path(__file__).resolve().parents[2]
MINI = os.environ.get("LONGSHOT_TEST_MINI") or str(ROOT / ".venv-tools" / "mini-swe-agent" / "bin" / "mini")
CANARY = "sk-canary-mini-7e21"
PROBE = "echo hello > hello.txt && (env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n') > seen.txt; echo probed"


def mini_worker(turn: Turn) -> Reply:
    if turn.turn == 0:
        return Reply(content="I will create hello.txt.", tool_calls=[ToolCallSpec("bash", {"command": PROBE})])
    assert "probed" in last_tool_result(turn.messages)
    return Reply(content="Done.", tool_calls=[ToolCallSpec("bash", {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"})])


@pytest.mark.skipif(not Path(MINI).exists(), reason=f"mini-swe-agent not installed at {MINI} (scripts/setup.sh installs it)")
def test_mini_swe_agent_lands_a_task_through_the_proxy(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([{"id": "t1", "description": "make hello.txt"}])),
                                "worker": {"t1": mini_worker}}))
    env = {**run_env(tmp_path, target, fake, CHECK_COMMANDS="none", WORKER_HARNESS="mini-swe-agent",
                     HARNESS_BIN=MINI, LLM_API_KEY=CANARY), "OPENAI_API_KEY": CANARY}

    done = run_cli(["make hello.txt"], env, cwd=tmp_path, timeout=240)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert fake.errors == []
    worker_requests = [r for r in fake.requests if r.role == "worker"]
    assert len(worker_requests) == 2 and all(r.task_id == "t1" for r in worker_requests)
    files = git("ls-tree", "-r", "--name-only", "main", cwd=target).split()
    assert "hello.txt" in files and not any(f.startswith(".longshot/") for f in files)
    seen = git("show", "main:seen.txt", cwd=target)
    assert "OPENAI_API_BASE=http://127.0.0.1" in seen  # mini really ran inside, via the proxy
    assert CANARY not in seen
    for log in (tmp_path / "logs").rglob("*"):  # run logs and the run's report
        if log.is_file() and log.suffix != ".png":
            assert CANARY not in log.read_text()


def test_agents_are_data_and_unsupported_endpoints_are_refused() -> None:
    specs = agent_specs()
    assert {"mini-swe-agent", "claude-code", "codex", "opencode", "aider"} <= set(specs)
    assert specs["claude-code"].endpoint == "anthropic-messages" and specs["codex"].endpoint == "responses"
    for name in ("claude-code", "codex"):
        with pytest.raises(ConfigError, match="WORKER_HARNESS"):
            load_agent(name)
    with pytest.raises(ConfigError, match="unknown harness"):
        load_agent("nope")
    assert load_agent("mini-swe-agent").bin == "mini"


def test_missing_harness_binary_exits_2(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    fake = fake_llm(RoleScript({}))
    env = run_env(tmp_path, target, fake, WORKER_HARNESS="mini-swe-agent", HARNESS_BIN=str(tmp_path / "nope"))
    done = run_cli(["x"], env, cwd=tmp_path)
    assert done.returncode == 2 and "HARNESS_BIN" in done.stderr
    assert shutil.which("definitely-not-mini") is None
