"""Runs that survive: crashes at every named point, dirty restarts, adoption of unrecorded
results, and resuming from a fresh clone (issue 9; reliability tests T1, T3, T4).

Every run is the real CLI in a subprocess, killed for real with SIGKILL at a crash point
(``LONGSHOT_CRASH_AT``) and resumed with ``--resume``; the fake model serves from this
process across restarts. What is checked afterwards is read from git (tests/invariants.py).
"""

from __future__ import annotations

import re

from pathlib import Path

from longshot.events import Event, HandoffReceived, RunResumed, RunWarning, WorkerStep, read_events
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env
from invariants import keep_reflog, landings, leftovers, moved_forward_only, sound

FILES = {"README.md": "ten files\n", "BROKEN": "remove me\n"}
TASKS = [{"id": f"t{i:02d}", "description": f"write f{i:02d}.txt", "scope": [f"f{i:02d}.txt"]} for i in range(1, 11)]
ENV = {"CHECK_COMMANDS": "test ! -e BROKEN", "MERGE_GATE": "off", "RECONCILER_INTERVAL": "1000",
       "MAX_WORKERS": "2", "HEALTH_CHECK_INTERVAL": "1"}
EXPECTED = {t["id"]: 1 for t in TASKS} | {"fix-001": 1}


def handoff() -> Reply:
    return Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "done"})])


def worker(turn: Turn) -> Reply:
    """Writes the task's file (a fix removes BROKEN), then hands off; by turn, so a task
    dispatched again after a crash starts over cleanly."""
    task = turn.task_id or ""
    if task.startswith("fix-"):
        first = Reply(tool_calls=[ToolCallSpec("bash", {"command": "rm -f BROKEN"})])
    else:
        first = Reply(tool_calls=[ToolCallSpec("write", {"path": f"f{task[1:]}.txt", "content": f"task {task}\n"})])
    return [first, handoff()][min(turn.turn, 1)]


def reconciler(turn: Turn) -> Reply:
    return Reply(content=plan_json([{"description": "remove the BROKEN marker file", "scope": ["BROKEN"],
                                     "fixes": ["F1"]}], "fix"))


def script(tasks: list[dict[str, object]] = TASKS) -> RoleScript:
    return RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker, "reconciler": reconciler})


def logs(base: Path) -> list[list[Event]]:
    """The run logs under ``base``, oldest first."""
    paths = sorted((base / "logs").glob("run-*.ndjson"), key=lambda p: p.stat().st_mtime_ns)
    return [list(read_events(p)) for p in paths]


def tree(remote: Path) -> str:
    return git("rev-parse", "main^{tree}", cwd=remote)


def hub_of(base: Path) -> Path:
    return next((base / "work").glob("hub-*[!k]"))


def check_invariants(target: Path, base: Path, expected: dict[str, int]) -> None:
    assert moved_forward_only(target) == []
    assert dict(landings(target)) == expected
    assert sound(target) == [] and sound(hub_of(base)) == []
    assert leftovers(base / "work") == []


def test_t1_crash_at_every_point_in_turn_then_resume_to_the_crash_free_result(tmp_path: Path, fake_llm, remote) -> None:
    clean, target = remote(FILES, name="clean.git"), remote(FILES, name="target.git")
    keep_reflog(target)
    fake = fake_llm(script())
    done = run_cli(["build it"], run_env(tmp_path / "clean", clean, fake, **ENV), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]

    env = run_env(tmp_path / "crashy", target, fake, **ENV)
    args = ["build it"]
    points = ["dispatch:2", "worker.result:1", "merge.checked:1", "merge.landed:1", "state.before_write:2",
              "state.after_write:2", "fix.created:1"]
    for point in points:
        done = run_cli(args, {**env, "LONGSHOT_CRASH_AT": point}, cwd=tmp_path)
        assert done.returncode == -9, f"{point} was not reached: {done.stdout[-3000:]}{done.stderr[-2000:]}"
        args = ["--resume"]
    done = run_cli(["--resume"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:]
    assert tree(target) == tree(clean)  # the same result as the run that never crashed
    check_invariants(target, tmp_path / "crashy", EXPECTED)
    resumed = [e for run in logs(tmp_path / "crashy") for e in run if isinstance(e, RunResumed)]
    assert len(resumed) == len(points)


def test_t4_a_result_the_dead_run_never_recorded_is_adopted_not_redone(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(FILES)
    keep_reflog(target)
    fake = fake_llm(script(TASKS[:3]))
    env = run_env(tmp_path, target, fake, **{**ENV, "MAX_WORKERS": "1"})  # one worker: one result in flight
    assert run_cli(["build it"], {**env, "LONGSHOT_CRASH_AT": "worker.result:1"}, cwd=tmp_path).returncode == -9
    (crashed,) = logs(tmp_path)
    handed = {e.task_id for e in crashed if isinstance(e, WorkerStep) and e.tool == "handoff"}
    recorded = {e.task_id for e in crashed if isinstance(e, HandoffReceived)}
    (done_task,) = handed - recorded  # it finished; the orchestrator died before recording it
    asked = fake.count(role="worker", task_id=done_task)

    done = run_cli(["--resume"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:]
    assert fake.count(role="worker", task_id=done_task) == asked  # the model was not asked to redo it
    resumed = next(e for e in logs(tmp_path)[-1] if isinstance(e, RunResumed))
    assert done_task in resumed.adopted
    check_invariants(target, tmp_path, {t["id"]: 1 for t in TASKS[:3]} | {"fix-001": 1})


def test_resume_from_a_fresh_clone_in_another_directory_finishes_the_run(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(FILES)
    keep_reflog(target)
    fake = fake_llm(script(TASKS[:5]))
    first = run_env(tmp_path / "machine-a", target, fake, **ENV)
    assert run_cli(["build it"], {**first, "LONGSHOT_CRASH_AT": "merge.landed:2"}, cwd=tmp_path).returncode == -9

    # Another machine: nothing of machine A's work directory, only the target repository.
    other = run_env(tmp_path / "machine-b", target, fake, **ENV)
    done = run_cli(["--resume"], other, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    check_invariants(target, tmp_path / "machine-b", {t["id"]: 1 for t in TASKS[:5]} | {"fix-001": 1})
    resumed = next(e for e in logs(tmp_path / "machine-b")[0] if isinstance(e, RunResumed))
    assert len(resumed.landed) >= 1  # what machine A landed was read from the target's trailers
    memory = [str(m.get("content")) for r in fake.requests if r.role == "planner" for m in r.body["messages"]
              if "has been resumed" in str(m.get("content"))]
    # The planner continues from its record: the first plan's scratchpad, or the follow-up's when
    # the planner answered again before the crash (under load it may; a state push in flight at
    # the SIGKILL may still complete afterwards, so the record is read by the resumed run alone).
    assert memory and re.search(r"Your last scratchpad:\n(notes|done)\n", memory[0]), memory[:1]


def test_t3_a_dirty_start_is_repaired_or_set_aside_and_nothing_unlanded_is_deleted(
        tmp_path: Path, fake_llm, remote) -> None:
    target = remote(FILES)
    keep_reflog(target)
    fake = fake_llm(script(TASKS[:4]))
    env = run_env(tmp_path, target, fake, **ENV)
    assert run_cli(["build it"], {**env, "LONGSHOT_CRASH_AT": "dispatch:2"}, cwd=tmp_path).returncode == -9
    hub = hub_of(tmp_path)
    # What killed runs and other tools leave behind:
    (hub / "refs" / "heads" / "main.lock").write_text("stale\n")  # a ref update that never finished
    (hub / "packed-refs.lock").write_text("")
    (hub / "MERGE_HEAD").write_text(git("rev-parse", "main", cwd=target) + "\n")  # a half-finished merge
    stale = sorted((tmp_path / "work" / "tasks").iterdir())  # checkouts of the dead run's sandboxes
    assert stale, "the crash should have left a sandbox behind"
    (stale[0] / "git" / "index.lock").write_text("")
    (stale[0] / "checkout" / "wip.txt").write_text("work in progress, never committed\n")
    ghost = tmp_path / "ghost"
    git("clone", "--quiet", str(target), str(ghost), cwd=tmp_path)
    (ghost / "ghost.txt").write_text("a branch no task knows\n")
    git("checkout", "--quiet", "-b", "worker/ghost-1", cwd=ghost)
    git("add", "ghost.txt", cwd=ghost)
    git("commit", "--quiet", "-m", "ghost work", cwd=ghost)
    git("push", "--quiet", "origin", "worker/ghost-1", cwd=ghost)
    ghost_tip = git("rev-parse", "HEAD", cwd=ghost)

    done = run_cli(["--resume"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:]
    warnings = [e.message for run in logs(tmp_path) for e in run if isinstance(e, RunWarning)]
    assert any("refs/heads/main.lock" in w and "MERGE_HEAD" in w and "packed-refs.lock" in w for w in warnings)
    assert any(f"sandbox {stale[0].name}" in w and "salvaged" in w for w in warnings)
    assert any("worker/ghost-1" in w and "set aside" in w for w in warnings)
    assert git("rev-parse", "refs/heads/worker/ghost-1", cwd=target) == ghost_tip  # kept, never deleted
    task = stale[0].name.rsplit("-", 2)[0]
    branch = git("for-each-ref", "--format=%(refname:short)", f"refs/heads/worker/{task}-*", cwd=target)
    assert branch, "the salvaged task's branch is kept"
    assert "wip.txt" in git("ls-tree", "--name-only", "main", cwd=target)  # the salvaged work was carried on
    check_invariants(target, tmp_path, {t["id"]: 1 for t in TASKS[:4]} | {"fix-001": 1})
