"""The main loop's decisions in whole in-process runs (fake model over HTTP, real git, real
sandboxes): when the planner is asked again, what a failed planner or subplanner leaves,
the planner's iteration cap, and a spent budget cancelling what has not started."""

from __future__ import annotations

from pathlib import Path

from longshot.events import (
    HandoffReceived, RunError, RunFinished, RunWarning, TaskCreated, TaskStatusChanged,
)
from longshot.pipeline.drive import REPLAN_AFTER_HANDOFFS
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

QUICK = [f"q{i}" for i in range(REPLAN_AFTER_HANDOFFS)]


def user_text(turn: Turn) -> str:
    return str(next(m["content"] for m in reversed(turn.messages) if m["role"] == "user"))


def test_the_planner_is_asked_again_after_enough_handoffs_while_work_is_still_open(tmp_path: Path, fake_llm,
                                                                                     remote) -> None:
    target = remote({"README.md": "r\n"})
    seen: dict[str, str] = {}
    slow_steps: dict[str, int] = {}

    def planner(turn: Turn) -> Reply:
        if turn.turn == 0:
            tasks = [{"id": q, "description": f"write {q}", "scope": [f"{q}.txt"]} for q in QUICK]
            return Reply(content=plan_json(tasks + [{"id": "slow", "description": "write slow", "scope": ["s.txt"]}]))
        seen.setdefault("followup", user_text(turn))
        return Reply(content=plan_json([], "done"))

    def worker(turn: Turn) -> Reply:
        if turn.task_id != "slow":
            return worker_steps([(f"{turn.task_id}.txt", "q\n")])[min(turn.turn, 1)]
        if "followup" not in seen:  # busy until the planner was asked again
            return Reply(tool_calls=[ToolCallSpec("bash", {"command": f"echo poll {turn.turn}"})], delay=0.1)  # not a loop
        finishing = slow_steps.setdefault("from", turn.turn)
        return worker_steps([("s.txt", "s\n")])[min(turn.turn - finishing, 1)]

    fake = fake_llm(RoleScript({"planner": planner, "worker": worker}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="4", TASK_MAX_STEPS="400") == 0
    followup = seen["followup"]
    assert all(f"- {q} [complete]" in followup for q in QUICK)
    assert "running: slow" in followup  # asked while the slow task still ran
    handed = {e.task_id for e in run_log(tmp_path) if isinstance(e, HandoffReceived)}
    assert handed == {*QUICK, "slow"}
    assert [e.handoff.status for e in run_log(tmp_path) if isinstance(e, HandoffReceived) and e.task_id == "slow"] == [
        "complete"]
    assert git("show", "main:s.txt", cwd=target) == "s"


def test_a_planner_that_fails_ends_planning_with_a_run_error(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "r\n"})
    fake = fake_llm(RoleScript({"planner": lambda turn: Reply(status=400, error_message="unknown parameter")}))
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none")
    events = run_log(tmp_path)
    [error] = events_of(events, RunError)
    assert error.message.startswith("planning failed: ") and "unknown parameter" in error.message
    assert events_of(events, TaskCreated) == []
    assert code != 0 and events_of(events, RunFinished)[-1].exit_code == code


def test_a_failed_subplanner_leaves_the_broad_task_to_one_worker(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "r\n"})
    scope = [f"m{i}/f.txt" for i in range(7)]  # broader than SUBPLAN_MAX_FILES and _MODULES: split
    plan = plan_json([{"id": "wide", "description": "touch every module", "scope": scope}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan),
                                "subplanner": lambda turn: Reply(status=400, error_message="no such model"),
                                "worker": worker_steps([("m0/f.txt", "x\n")])}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0
    events = run_log(tmp_path)
    [warning] = [w for w in events_of(events, RunWarning) if w.code == "subplanner.failed"]
    assert warning.task_id == "wide" and "no such model" in warning.message
    assert [r.task_id for r in fake.requests if r.role == "worker"][0] == "wide"  # one worker did it as it is
    assert git("show", "main:m0/f.txt", cwd=target) == "x"
    assert not any(isinstance(e, TaskCreated) and e.parent == "wide" for e in events)


def test_the_planner_stops_at_its_iteration_cap_and_says_so(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "r\n"})

    def planner(turn: Turn) -> Reply:  # always has more to propose
        return Reply(content=plan_json([{"id": f"t{turn.turn}", "description": f"write {turn.turn}",
                                         "scope": [f"{turn.turn}.txt"]}]))

    def worker(turn: Turn) -> Reply:
        return worker_steps([(f"{turn.task_id}.txt", "w\n")])[min(turn.turn, 1)]

    fake = fake_llm(RoleScript({"planner": planner, "worker": worker}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", PLANNER_MAX_ITERATIONS="2") == 0
    events = run_log(tmp_path)
    assert len([r for r in fake.requests if r.role == "planner"]) == 2
    [warning] = [w for w in events_of(events, RunWarning) if w.code == "planner.max_iterations"]
    assert "PLANNER_MAX_ITERATIONS=2" in warning.message
    assert {e.task_id for e in events_of(events, HandoffReceived)} == {"t0", "t1"}  # its tasks still ran


def test_a_spent_budget_cancels_the_tasks_not_yet_started(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "r\n"})
    plan = plan_json([{"id": f"t{i}", "description": f"write {i}", "scope": [f"{i}.txt"]} for i in range(3)])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan), "worker": worker_steps([("x.txt", "x\n")])}))
    run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", RUN_MAX_TOKENS="1", MAX_WORKERS="1")
    events = run_log(tmp_path)
    cancelled = [e for e in events_of(events, TaskStatusChanged) if e.after == "cancelled"]
    assert {e.task_id for e in cancelled} == {"t0", "t1", "t2"}
    assert all("RUN_MAX_TOKENS spent before it started" in e.reason for e in cancelled)
    assert [r for r in fake.requests if r.role == "worker"] == []


def events_of(events: list, cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]
