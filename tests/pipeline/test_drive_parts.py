"""The main loop's own bookkeeping, on a Driver built by the real composition root (no run):
tasks added (ids unique in a run, continuations carried on from their task's branch and
feature), what the planner is told of progress and budget, and the planning state's round
trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longshot.build import build_model, build_provider
from longshot.bus import Bus
from longshot.budget import RunBudget
from longshot.events import MemorySink, TaskCreated, TaskRejected
from longshot.orchestrator import Orchestrator
from longshot.pipeline.drive import Driver
from longshot.pipeline.plan import PlannerState
from longshot.testing.fake_script import RoleScript
from longshot.types import Task, TaskStatus

from helpers import config_for, planner_then_done


@pytest.fixture
async def built(tmp_path: Path, fake_llm, remote) -> AsyncIterator[tuple[Orchestrator, MemorySink]]:
    fake = fake_llm(RoleScript({"planner": planner_then_done()}))
    config = config_for(tmp_path, remote({"README.md": "r\n"}), fake, CHECK_COMMANDS="none")
    sink = MemorySink()
    bus = Bus("run-1", [sink])
    budget = RunBudget(max_tokens=1000, max_cost_usd=2.5)
    model = build_model(config, bus, budget)
    try:
        yield Orchestrator(config, bus, model, build_provider(config, bus.run_id), budget), sink
    finally:
        await model.aclose()


def task(task_id: str, **extra: object) -> Task:
    return Task(id=task_id, description=f"do {task_id} " + "x" * 100, branch=f"worker/{task_id}", **extra)  # type: ignore[arg-type]


async def test_a_task_id_is_used_once_per_run(built: tuple[Orchestrator, MemorySink]) -> None:
    orchestrator, sink = built
    driver: Driver = orchestrator.driver
    driver.add([task("a"), task("b")])
    driver.add([task("a", scope=["other.py"]), task("c")])
    assert list(orchestrator.scheduler.tasks) == ["a", "b", "c"]
    [rejected] = sink.of_type(TaskRejected)
    assert (rejected.task_id, rejected.reason) == ("a", "an id already used in this run")
    assert orchestrator.scheduler.tasks["a"].scope == []  # the first one stays
    assert driver.changed.is_set()


async def test_a_continuation_starts_from_its_tasks_branch_and_serves_its_feature(
        built: tuple[Orchestrator, MemorySink]) -> None:
    orchestrator, sink = built
    driver = orchestrator.driver
    driver.add([task("a", feature="search"), task("b", feature="sort")])
    driver.add([task("a2", continue_from="a"), task("b2", continue_from="b", feature="own"),
                task("z", continue_from="unknown")])
    tasks = orchestrator.scheduler.tasks
    assert (tasks["a2"].base_branch, tasks["a2"].feature) == ("worker/a", "search")
    assert (tasks["b2"].base_branch, tasks["b2"].feature) == ("worker/b", "own")  # its own feature wins
    assert tasks["z"].base_branch is None
    created = {e.task_id: e for e in sink.of_type(TaskCreated)}
    assert created["a2"].feature == "search"  # announced as it will run


async def test_the_planner_is_told_the_budget_and_an_account_of_top_level_tasks(
        built: tuple[Orchestrator, MemorySink]) -> None:
    orchestrator, _ = built
    driver = orchestrator.driver
    driver.add([task("a"), task("b"), task("a-sub-1", parent="a")])
    scheduler = orchestrator.scheduler
    scheduler.move(scheduler.tasks["a"], TaskStatus.RUNNING)
    orchestrator.budget.add("worker", "a", 400, 0.75)
    progress = driver.progress()
    assert progress.budget == "tokens used 400 of 1000; cost $0.75 of $2.5"
    lines = progress.summary.splitlines()
    assert lines == [f"a [running] do a {'x' * 75}", f"b [pending] do b {'x' * 75}"]  # no subtask; cut at 80
    assert [t.id for t in progress.active] == ["a"]  # what is running now
    assert (progress.landed, progress.failed, progress.queue_depth) == (0, 0, 0)


async def test_without_a_cap_the_budget_line_is_left_out(tmp_path: Path, fake_llm, remote) -> None:
    fake = fake_llm(RoleScript({"planner": planner_then_done()}))
    config = config_for(tmp_path, remote({"README.md": "r\n"}), fake, CHECK_COMMANDS="none")
    bus = Bus("run-2", [MemorySink()])
    model = build_model(config, bus, RunBudget())
    try:
        orchestrator = Orchestrator(config, bus, model, build_provider(config, bus.run_id), RunBudget())
        assert orchestrator.driver.progress().budget == ""
    finally:
        await model.aclose()


async def test_the_planning_state_round_trips_with_the_planners_live_notes(
        built: tuple[Orchestrator, MemorySink]) -> None:
    orchestrator, _ = built
    tip = await orchestrator.hub.open()
    driver = orchestrator.driver
    saved = PlannerState(iteration=3, scratchpad="pad", summary="so far", notes=["recorded note"], last_tip=tip,
                         last_proposed=2, finalizing=True, final_rounds=1)
    await driver.restore(saved, tip)
    assert driver.flags == saved and driver.flags is not saved
    assert orchestrator.planner.iteration == 3 and orchestrator.planner.scratchpad == "pad"
    orchestrator.planner.notes.append("a new note")
    again = driver.snapshot()
    assert again.notes == ["recorded note", "a new note"] and again.last_tip == tip
    assert (again.iteration, again.last_proposed, again.finalizing, again.final_rounds) == (3, 2, True, 1)
    assert driver.flags.notes == ["recorded note"]  # the snapshot is a copy
    assert driver.busy == 0
