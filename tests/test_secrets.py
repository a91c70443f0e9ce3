"""T18 end to end: secrets in the orchestrator's environment never reach a sandbox, the
model, git or the logs, even when the model tries to exfiltrate them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn

from helpers import last_tool_result, plan_json, planner_then_done, run_cli, run_env

CANARIES = {"OPENAI_API_KEY": "sk-canary-openai-5f1e", "GITHUB_TOKEN": "ghp_canary_9a7b", "LLM_API_KEY": "sk-canary-llm-c3d2"}
PROBE = "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; cat ~/.netrc ~/.git-credentials 2>&1; git config --list 2>&1"


def exfiltrating_worker(turn: Turn) -> Reply:
    if turn.turn == 0:
        return Reply(tool_calls=[ToolCallSpec("bash", {"command": PROBE})])
    seen = last_tool_result(turn.messages)
    if turn.turn == 1:
        return Reply(tool_calls=[ToolCallSpec("write", {"path": "leak.txt", "content": seen})])
    return Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "leaked: " + seen[:3000]})])


def test_canaries_never_leave_the_orchestrator(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    request_log = tmp_path / "requests.jsonl"
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([{"id": "t1", "description": "x"}])),
                                "worker": exfiltrating_worker}), request_log=request_log)
    env = {**run_env(tmp_path, target, fake, CHECK_COMMANDS="none"), **CANARIES}

    done = run_cli(["do it"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    probe_output = last_tool_result([r for r in fake.requests if r.task_id == "t1"][1].body["messages"])
    assert "HOME=/home/sandbox" in probe_output  # the probe really ran inside the sandbox
    objects = subprocess.run(
        "git cat-file --batch-all-objects --batch", shell=True, cwd=target, capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")
    assert "leak.txt" in subprocess.run(["git", "ls-tree", "--name-only", "main"], cwd=target,
                                        capture_output=True, text=True).stdout
    assert fake.settle()
    haystacks = {
        "git objects": objects,
        "request log": request_log.read_text(),
        "run logs and reports": "".join(p.read_text() for p in (tmp_path / "logs").rglob("*")
                                        if p.is_file() and p.suffix != ".png"),
        "stdout": done.stdout + done.stderr,
    }
    for name, text in haystacks.items():
        for canary in CANARIES.values():
            assert canary not in text, f"{canary} leaked into {name}"
    assert all(r.has_auth for r in fake.requests)  # the key was used, in the header only
