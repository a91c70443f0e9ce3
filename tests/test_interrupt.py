"""SIGINT/SIGTERM: stop dispatching, a grace to hand off, salvage the rest, record, exit 130,
and resume later with nothing lost; a second signal exits at once, still resumable (issue 9).

The CLI runs in a subprocess and gets real signals; the fake model serves from this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from longshot.events import Event, RunFinished, RunInterrupted, WorkerStep, read_events
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env
from invariants import keep_reflog, landings, leftovers, moved_forward_only

TASKS = [{"id": f"t{i}", "description": f"write f{i}.txt", "scope": [f"f{i}.txt"]} for i in range(1, 4)]


def script(slow: list[bool]) -> RoleScript:
    """Each worker writes its file, runs a command (slow while ``slow[0]``), hands off."""

    def worker(turn: Turn) -> Reply:
        task = turn.task_id or ""
        steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": f"f{task[1:]}.txt", "content": f"{task}\n"})]),
                 Reply(tool_calls=[ToolCallSpec("bash", {"command": "sleep 60" if slow[0] else "true",
                                                         "timeout": 120})]),
                 Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "done"})])]
        return steps[min(turn.turn, 2)]

    return RoleScript({"planner": planner_then_done(plan_json(TASKS)), "worker": worker})


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env}
    return subprocess.Popen([sys.executable, "-m", "longshot", *args], env=full, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def events(base: Path) -> list[Event]:
    paths = sorted((base / "logs").glob("run-*.ndjson"), key=lambda p: p.stat().st_mtime_ns)
    return list(read_events(paths[-1])) if paths else []


def wait_for_writes(base: Path, count: int, timeout: float = 60) -> None:
    """Until ``count`` workers have written their file (and so are in their slow command)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(isinstance(e, WorkerStep) and e.tool == "write" for e in events(base)) >= count:
            time.sleep(0.3)
            return
        time.sleep(0.1)
    raise AssertionError("the workers never started")


def test_sigint_salvages_running_work_exits_130_and_the_run_resumes(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    keep_reflog(target)
    slow = [True]
    fake = fake_llm(script(slow))
    env = run_env(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2", SHUTDOWN_GRACE="1")
    proc = start(["build it"], env, tmp_path)
    wait_for_writes(tmp_path, 2)

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 130, out[-3000:]
    log = events(tmp_path)
    assert [e.signal for e in log if isinstance(e, RunInterrupted)] == ["SIGINT"]
    assert isinstance(log[-1], RunFinished) and log[-1].exit_code == 130 and "--resume" in log[-1].summary
    for task in ("t1", "t2"):  # interrupted mid-command: what they wrote is on their branches, published
        branch = git("for-each-ref", "--format=%(refname:short)", f"refs/heads/worker/{task}-*", cwd=target)
        assert git("show", f"{branch}:f{task[1:]}.txt", cwd=target) == task
        assert "Longshot-Status: interrupted" in git("log", "-1", "--format=%B", branch, cwd=target)
    assert "t3" not in {e.task_id for e in log if isinstance(e, WorkerStep)}  # nothing new was dispatched

    slow[0] = False
    done = run_cli(["--resume"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:]
    assert dict(landings(target)) == {"t1": 1, "t2": 1, "t3": 1}
    assert moved_forward_only(target) == [] and leftovers(tmp_path / "work") == []


def test_a_second_signal_exits_at_once_and_the_run_still_resumes(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    slow = [True]
    fake = fake_llm(script(slow))
    env = run_env(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2", SHUTDOWN_GRACE="30")
    proc = start(["build it"], env, tmp_path)
    wait_for_writes(tmp_path, 2)

    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 130, out[-3000:]
    interrupts = [e for e in events(tmp_path) if isinstance(e, RunInterrupted)]
    assert [(e.signal, e.immediate) for e in interrupts] == [("SIGTERM", False), ("SIGINT", True)]
    # it exited at once on the second signal, not after the 30 s of grace: the graceful path's end never came
    assert not [e for e in events(tmp_path) if isinstance(e, RunFinished)]

    slow[0] = False
    done = run_cli(["--resume"], env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert dict(landings(target)) == {"t1": 1, "t2": 1, "t3": 1}
    assert leftovers(tmp_path / "work") == []
