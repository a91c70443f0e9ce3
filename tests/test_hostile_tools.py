"""Hostile tool calls through the whole pipeline (issue 15 items 5 and 7): the scripted model
over real HTTP, real bubblewrap, real git, the CLI in a subprocess.

Six workers at once read FIFOs, list names that are not UTF-8, write lone surrogates and hand
off 3 MB: every call gets an answer, the run ends with ``run.finished``, and what the model
wrote is capped before it reaches the planner's requests, the run state and git.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from longshot.events import HandoffReceived, RunFinished
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env, run_log

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

def hostile_steps(tid: str) -> list[ToolCallSpec]:
    return [
        ToolCallSpec("bash", {"command": f"mkfifo pipe && printf 'price\\n' > $'caf\\xe9-{tid}.txt' && mkdir -p d && mkfifo d/p"}),
        ToolCallSpec("read", {"path": "pipe"}),
        ToolCallSpec("edit", {"path": "d/p", "old_text": "a", "new_text": "b"}),
        ToolCallSpec("ls", {}),
        ToolCallSpec("grep", {"pattern": "price"}),
        ToolCallSpec("find", {"pattern": "caf*"}),
        ToolCallSpec("write", raw_arguments='{"path": "bad.txt", "content": "a\\ud800b"}'),
        ToolCallSpec("write", raw_arguments=f'{{"path": "ok-{tid}.txt", "content": "fine\\udce9"}}'),
    ]


def hostile_worker(turn: Turn) -> Reply:
    steps = hostile_steps(str(turn.task_id))
    if turn.turn < len(steps):
        return Reply(tool_calls=[steps[turn.turn]])
    return Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "survived"})])


def test_six_workers_reading_fifos_and_odd_names_end_the_run_normally(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    tasks = [{"id": f"f{i}", "description": f"poke the file tools {i}", "scope": [f"f{i}"]} for i in range(6)]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": {"*": hostile_worker}}))

    done = run_cli(["poke"], run_env(tmp_path, target, fake, MAX_WORKERS="6", CHECK_COMMANDS="none",
                                     WORKER_TIMEOUT="120"), cwd=tmp_path, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = run_log(tmp_path)
    assert isinstance(events[-1], RunFinished) and sorted(events[-1].landed) == [f"f{i}" for i in range(6)]
    last = [r for r in fake.requests if r.task_id == "f0"][-1]
    answers = [str(m["content"]) for m in last.body["messages"] if m.get("role") == "tool"]
    assert "not a regular file" in answers[1] and "not a regular file" in answers[2]
    assert "caf\\xe9-f0.txt" in answers[3] and "price" in answers[4] and "caf" in answers[5]
    assert "lone surrogate" in answers[6] and answers[7].startswith("wrote")
    files = git("ls-tree", "-r", "--name-only", "main", cwd=target).splitlines()
    assert "bad.txt" not in files and {f"ok-f{i}.txt" for i in range(6)} <= set(files)
    shown = subprocess.run(["git", "show", "main:ok-f0.txt"], cwd=target, capture_output=True, check=True).stdout
    assert shown == b"fine\xe9"  # the surrogate escape was written as the byte it stands for


BIG = "A" * (3 * 2**20)


def flooding_worker(turn: Turn) -> Reply:
    return Reply(tool_calls=[ToolCallSpec("handoff", {
        "status": "complete", "summary": BIG, "concerns": [BIG[:100_000]] * 50, "suggestions": [BIG]})])


def flooding_planner(turn: Turn) -> Reply:
    if turn.turn == 0:
        return Reply(content=plan_json([{"id": "big", "description": "D" * 500_000, "acceptance": "C" * 500_000,
                                         "scope": [f"s{i}.py" for i in range(5000)]}], scratchpad=BIG))
    return Reply(content=plan_json([], "done"))


def test_a_3mb_handoff_and_plan_are_capped_before_state_prompts_and_git(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    fake = fake_llm(RoleScript({"planner": flooding_planner, "worker": {"*": flooding_worker}}))

    done = run_cli(["flood"], run_env(tmp_path, target, fake, CHECK_COMMANDS="none", SUBPLAN_MAX_DEPTH="0"),
                   cwd=tmp_path, timeout=300)

    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert fake.settle()
    biggest = max(len(str(r.body)) for r in fake.requests if r.role == "planner")
    assert biggest < 200_000, f"a planner request of {biggest} characters"
    handoff = next(e for e in run_log(tmp_path) if isinstance(e, HandoffReceived))
    assert len(handoff.model_dump_json()) < 100_000
    refs = git("for-each-ref", "--format=%(refname)", cwd=target).splitlines()
    for ref in refs:  # every branch, the run state included
        size = int(subprocess.run(["git", "cat-file", "-s", ref], cwd=target, capture_output=True, text=True).stdout)
        assert size < 100_000, f"{ref}: {size} bytes"
    state = [r for r in refs if r.startswith("refs/longshot/state/")]
    assert state
    files = subprocess.run(["git", "ls-tree", "-r", "-l", state[0]], cwd=target, capture_output=True, text=True).stdout
    assert all(int(line.split()[3]) < 400_000 for line in files.splitlines()), files
