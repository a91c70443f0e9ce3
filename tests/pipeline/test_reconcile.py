"""The reconciler and finalization end to end: sweeps find real breakage on the target
branch, fix tasks are issued once per failure, and the exit code tells the truth (issue 8, T9).

Fake model over real HTTP, real git, real pytest inside real bubblewrap sandboxes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from longshot.events import (
    FinalizationAttempt, GateResult, MergeLanded, RunFinished, RunWarning, SweepFinished, TaskCreated,
    TaskStatusChanged,
)
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
CALC = {
    "pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n",
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}
GOOD_CALC = "def add(a, b):\n    return a + b\n"
FAST = {"RECONCILER_INTERVAL": "0.4", "RECONCILER_RED_INTERVAL": "0.4", "CHECK_COMMANDS": PYTEST}


def reconciler(*answers: list[dict[str, object]]):
    """A reconciler that gives ``answers`` in turn (one per sweep that asks), then nothing."""
    asked: list[str] = []

    def play(turn: Turn) -> Reply:
        asked.append(str(turn.messages[-1]["content"]))
        n = len(asked) - 1
        return Reply(content=plan_json(answers[n] if n < len(answers) else [], "fixes"))

    play.asked = asked  # type: ignore[attr-defined]
    return play


def created(events: list, kind_prefix: str = "fix-") -> list[TaskCreated]:
    return [e for e in events if isinstance(e, TaskCreated) and e.task_id.startswith(kind_prefix)]


def test_a_breaking_change_landed_without_the_gate_is_found_and_fixed(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    tasks = [{"id": "speedup", "description": "make add faster", "scope": ["calc.py"]},
             {"id": "docs", "description": "write docs", "scope": ["README.md"]}]
    fix = {"description": "add() subtracts; make it add again", "scope": ["calc.py"], "fixes": ["F1"],
           "id": "task-999", "branch": "main", "priority": 9}
    bot = reconciler([fix])

    def docs(turn: Turn) -> Reply:
        """Keeps the run going (so it is a periodic sweep that finds the breakage, not finalization's)
        until the reconciler has been asked; each step differs, so it is not a loop."""
        if turn.turn == 0:
            return worker_steps([("README.md", "# calc\n")])[0]
        if not bot.asked and turn.turn < 80:
            return Reply(tool_calls=[ToolCallSpec("bash", {"command": f"sleep 0.3; echo waiting {turn.turn}"})])
        return worker_steps([])[-1]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "reconciler": bot, "worker": {
        "speedup": worker_steps([("calc.py", "def add(a, b):\n    return a - b\n")]), "docs": docs,
        "fix-001": worker_steps([("calc.py", GOOD_CALC)]),
    }}))

    code = run_inprocess(tmp_path, target, fake, MERGE_GATE="off", **FAST)

    events = run_log(tmp_path)
    assert code == 0, events[-1].summary
    fixes = created(events)
    assert [e.task_id for e in fixes] == ["fix-001"]  # our id, not the model's; one task however many sweeps
    assert fixes[0].priority == 1 and fixes[0].branch.startswith("worker/fix-001-")
    assert "tests/test_calc.py::test_add" in fixes[0].description  # cites the exact failure
    assert "test tests/test_calc.py::test_add" in bot.asked[0]
    sweeps = [e for e in events if isinstance(e, SweepFinished)]
    first_red = next(i for i, e in enumerate(events) if isinstance(e, SweepFinished) and not e.green)
    finalization = next(i for i, e in enumerate(events) if isinstance(e, FinalizationAttempt))
    assert first_red < finalization  # a periodic sweep found it while the run was going on
    assert sum(bool(e.fixes) for e in sweeps) == 1
    landed = {e.task_id: e for e in events if isinstance(e, MergeLanded)}
    assert {"speedup", "fix-001", "docs"} <= set(landed)
    time_to_green = landed["fix-001"].ts - landed["speedup"].ts
    print(f"time to green: {time_to_green:.2f}s")  # recorded in docs/benchmarks.md
    assert sweeps[-1].green and isinstance(events[-1], RunFinished) and events[-1].green


def test_t9_a_failure_present_at_the_start_gets_exactly_one_fix_and_blames_no_task(
        tmp_path: Path, fake_llm, remote) -> None:
    target = remote({**CALC, "tests/test_old.py": "def test_legacy():\n    assert 1 + 1 == 3\n"})
    tasks = [{"id": "feature", "description": "add mul", "scope": ["mul.py", "tests/test_mul.py"]}]
    # The model answers the same fix twice under different ids: one task.
    same = {"description": "test_legacy expects 1 + 1 == 3; correct the expectation", "scope": ["tests/test_old.py"],
            "fixes": ["F1"]}
    bot = reconciler([{**same, "id": "fix-a"}, {**same, "id": "fix-b"}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "reconciler": bot, "worker": {
        "feature": worker_steps([("mul.py", "def mul(a, b):\n    return a * b\n"),
                                 ("tests/test_mul.py", "from mul import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")],
                                delay=0.8),
        "fix-001": worker_steps([("tests/test_old.py", "def test_legacy():\n    assert 1 + 1 == 2\n")]),
    }}))

    code = run_inprocess(tmp_path, target, fake, **FAST)

    events = run_log(tmp_path)
    assert code == 0, events[-1].summary
    assert [e.task_id for e in created(events)] == ["fix-001"]
    assert len([e for e in events if isinstance(e, SweepFinished)]) >= 3  # several sweeps, still one fix
    warned = [e for e in events if isinstance(e, RunWarning) and e.code == "checks.preexisting"
              and "already failing when the run started" in e.message]
    assert len(warned) == 1 and "tests/test_old.py::test_legacy" in warned[0].message
    gate = [e for e in events if isinstance(e, GateResult) and e.task_id == "feature"]
    assert gate and gate[0].ok and gate[0].preexisting  # the feature was not blamed for the old failure
    assert ("feature", "landed") in {(e.task_id, e.after) for e in events if isinstance(e, TaskStatusChanged)}
    assert len(bot.asked) == 1  # asked once, in finalization, after the planned work had landed


def test_conflict_markers_on_the_target_are_fixed_before_failing_tests(tmp_path: Path, fake_llm, remote) -> None:
    marked = "<<<<<<< ours\ndef add(a, b):\n    return a + b\n=======\ndef add(a, b):\n    return b + a\n>>>>>>> theirs\n"
    target = remote({**CALC, "calc.py": marked,
                     "tests/test_more.py": "from calc import add\n\ndef test_zero():\n    assert add(0, 0) == 1\n"})
    bot = reconciler([{"description": "resolve the markers in calc.py", "scope": ["calc.py"]}],
                     [{"description": "test_zero is wrong: 0 + 0 is 0", "scope": ["tests/test_more.py"]}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([])), "reconciler": bot, "worker": {
        "fix-001": worker_steps([("calc.py", GOOD_CALC)]),
        "fix-002": worker_steps([("tests/test_more.py",
                                  "from calc import add\n\ndef test_zero():\n    assert add(0, 0) == 0\n")]),
    }}))

    code = run_inprocess(tmp_path, target, fake, **FAST)

    events = run_log(tmp_path)
    assert code == 0, events[-1].summary
    fixes = created(events)
    assert [e.task_id for e in fixes] == ["fix-001", "fix-002"]
    assert "markers calc.py" in fixes[0].description and "test_zero" not in fixes[0].description
    assert "tests/test_more.py::test_zero" in fixes[1].description
    assert "markers calc.py" in bot.asked[0] and "test_zero" not in bot.asked[0]  # one level per sweep
    assert "<<<<<<<" not in git("show", "main:calc.py", cwd=target)


def test_failed_and_decomposed_tasks_do_not_make_a_green_run_fail(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    wide = [f"pkg/m{i}.py" for i in range(7)]
    tasks = [{"id": "wide", "description": "build the seven modules", "scope": wide},
             {"id": "doomed", "description": "something impossible", "scope": ["x.py"]},
             {"id": "noop", "description": "check the docs are fine", "scope": ["README.md"]}]
    children = [{"id": "a", "description": "m0-m3", "scope": wide[:4]}, {"id": "b", "description": "m4-m6", "scope": wide[4:]}]

    def subplanner(turn: Turn) -> Reply:
        return Reply(content=plan_json(children if turn.turn == 0 else [], "parts"))

    def worker(turn: Turn) -> Reply:
        if turn.task_id == "doomed":
            return worker_steps([], status="failed", summary="cannot be done")[0]
        if turn.task_id == "noop":
            return worker_steps([], summary="nothing to change")[0]
        scope = {"wide-sub-1": wide[:4], "wide-sub-2": wide[4:]}[turn.task_id or ""]
        return worker_steps([(p, "X = 1\n") for p in scope])[min(turn.turn, len(scope))]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "subplanner": subplanner,
                                "worker": worker}))
    code = run_inprocess(tmp_path, target, fake, **FAST)

    events = run_log(tmp_path)
    final = events[-1]
    assert isinstance(final, RunFinished)
    statuses = {(e.task_id, e.after) for e in events if isinstance(e, TaskStatusChanged)}
    assert {("wide", "decomposed"), ("doomed", "failed"), ("noop", "unchanged")} <= statuses
    assert code == 0 and final.green and final.unlanded == [] and final.failed == ["doomed"], final.summary
    assert created(events) == []


def test_a_fix_that_does_not_fix_ends_the_run_with_exit_1_naming_the_check(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({**CALC, "calc.py": "def add(a, b):\n    return a * b\n"})
    bot = reconciler([{"description": "add() multiplies; make it add", "scope": ["calc.py"]}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([])), "reconciler": bot, "worker": {
        "fix-001": worker_steps([("calc.py", "def add(a, b):\n    return a * b  # looked fine to me\n")]),
    }}))

    code = run_inprocess(tmp_path, target, fake, FINALIZATION_MAX_ATTEMPTS="3", **FAST)

    events = run_log(tmp_path)
    final = events[-1]
    assert code == 1 and isinstance(final, RunFinished) and not final.green
    assert f"failing check: {PYTEST}" in final.summary
    assert "tests/test_calc.py::test_add" in final.summary  # pre-existing, said so
    assert [e.task_id for e in created(events)] == ["fix-001"]  # a pre-existing failure gets exactly one fix
    assert len([e for e in events if isinstance(e, FinalizationAttempt)]) == 2  # then nothing more could be done


def test_the_model_failing_still_gives_one_fix_per_failure(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({**CALC, "calc.py": "def add(a, b):\n    return a - b\n"})

    def broken(turn: Turn) -> Reply:
        return Reply(content="I would rather not answer in JSON")

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([])), "reconciler": broken, "worker": {
        "fix-001": worker_steps([("calc.py", GOOD_CALC)]),
    }}))
    code = run_inprocess(tmp_path, target, fake, **FAST)

    events = run_log(tmp_path)
    assert code == 0, events[-1].summary
    fixes = created(events)
    assert [e.task_id for e in fixes] == ["fix-001"] and "tests/test_calc.py::test_add" in fixes[0].description


def test_no_checks_detected_is_said_loudly_and_not_called_green(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"notes.txt": "nothing to build\n"})
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([]))}))
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="")
    events = run_log(tmp_path)
    assert code == 1 and not events[-1].green
    assert any(isinstance(e, RunWarning) and e.code == "checks.none" and e.message.startswith("NO CHECKS") for e in events)
    plan = json.loads(next(e for e in events if e.type == "checks.plan").model_dump_json())
    assert plan["source"] == "none"
    code = run_inprocess(tmp_path / "again", target, fake, CHECK_COMMANDS="none")
    assert code == 0


def test_partial_work_is_decided_in_finalization_landed_if_it_passes_else_reported(
        tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    tasks = [{"id": "half", "description": "add sub and mul", "scope": ["ops.py"]},
             {"id": "half-broken", "description": "speed up add", "scope": ["calc.py"]}]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": {
        "half": worker_steps([("ops.py", "def sub(a, b):\n    return a - b\n")], status="partial",
                             summary="sub is done; mul is not started"),
        "half-broken": worker_steps([("calc.py", "def add(a, b):\n    return a * b\n")], status="partial",
                                    summary="half way through"),
    }}))

    code = run_inprocess(tmp_path, target, fake, **FAST)

    events = run_log(tmp_path)
    final = events[-1]
    assert isinstance(final, RunFinished)
    moves = [(i, e.task_id, e.after) for i, e in enumerate(events) if isinstance(e, TaskStatusChanged)]
    finalization = next(i for i, e in enumerate(events) if isinstance(e, FinalizationAttempt))
    assert any(t == "half" and after == "partial" for _, t, after in moves)
    landed_at = next(i for i, t, after in moves if t == "half" and after == "landed")
    assert landed_at > finalization  # decided in finalization, by the gate
    assert "def sub" in git("show", "main:ops.py", cwd=target)
    # The broken half is refused by the gate and reported, never landed; the exit code says so.
    assert git("show", "main:calc.py", cwd=target) == GOOD_CALC.strip()
    assert code == 1 and final.unlanded == ["half-broken"], final.summary
    assert "not landed: half-broken" in final.summary and "check failed on the merged tree" in final.summary


async def test_a_sweep_of_a_tip_that_moved_meanwhile_is_discarded(tmp_path: Path, remote) -> None:
    import asyncio

    from longshot.events import MemorySink
    from longshot.hub import Hub
    from longshot.pipeline.checks import CheckSource
    from longshot.pipeline.parse import TaskValidator
    from longshot.pipeline.reconcile import Reconciler
    from longshot.pipeline.schedule import Scheduler
    from longshot.prompts import Prompts
    from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider

    target = remote(CALC)
    hub = Hub(tmp_path / "hub", str(target), "main", ("Longshot", "longshot@localhost"))
    start = await hub.open()
    sink = MemorySink()

    def no_model():  # a discarded sweep must not ask for fixes
        raise AssertionError("the reconciler asked the model about a tree that is gone")

    reconciler = Reconciler(
        LocalSandboxProvider(tmp_path / "work", LocalOptions(tasks_dir=tmp_path / "tasks")), hub,
        CheckSource(hub, ["sleep 1.5; exit 1"]), Scheduler(sink), TaskValidator(prefix="worker/", main_branch="main"),
        no_model, Prompts(), sink, start_commit=start, timeout=30, prefix="worker/")
    sweep = asyncio.create_task(reconciler.sweep())
    await asyncio.sleep(0.7)  # the check is running: the merge queue lands something meanwhile
    tree = await hub.git.run("rev-parse", f"{start}^{{tree}}")
    moved = await hub.git.run("commit-tree", tree, "-p", start, "-m", "landed during the sweep")
    await hub.set_tip(moved, start)  # as the merge queue moves it

    outcome = await sweep

    assert outcome.discarded and outcome.fixes == [] and outcome.commit == start
    finished = sink.of_type(SweepFinished)
    assert len(finished) == 1 and finished[0].discarded and finished[0].commit == start
    assert reconciler.last is None  # nothing is concluded from a tree that is gone
