"""The main loop's own bookkeeping, on a Driver made of the parts the real composition root
builds (no run):
tasks added (ids unique in a run, continuations carried on from their task's branch and
feature), what the planner is told of progress and budget, and the planning state's round
trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from longshot.build import build_model, build_provider
from longshot.bus import Bus
from longshot.budget import RunBudget
from longshot.events import MemorySink, TaskCreated, TaskRejected
from longshot.orchestrator import Orchestrator
from longshot.pipeline.decompose import Subplanner
from longshot.pipeline.drive import DriveOptions, Driver
from longshot.pipeline.plan import PlannerState
from longshot.pipeline.reconcile import Reconciler
from longshot.testing.fake_script import RoleScript
from longshot.types import Task, TaskStatus

from stagekit import conversation
from helpers import config_for, planner_then_done


@dataclass
class Built:
    orchestrator: Orchestrator
    driver: Driver
    sink: MemorySink


def no_subplanner(task: Task) -> Subplanner:
    raise AssertionError(f"{task.id} is not split in these tests")


@asynccontextmanager
async def driving(tmp_path: Path, fake_llm, remote, budget: RunBudget) -> AsyncIterator[Built]:
    """The orchestrator's parts (hub opened) and a Driver over them, as a run's start makes it."""
    fake = fake_llm(RoleScript({"planner": planner_then_done()}))
    config = config_for(tmp_path, remote({"README.md": "r\n"}), fake, CHECK_COMMANDS="none")
    sink = MemorySink()
    bus = Bus("run-1", [sink])
    model = build_model(config, bus, budget)
    try:
        o = Orchestrator(config, bus, model, build_provider(config, bus.run_id), budget)
        tip = await o.hub.open()
        reconciler = Reconciler(o.provider, o.hub, o.checks, o.scheduler, o.validator,
                                lambda: conversation(fake, o.hub, sink, "reconciler"), o.prompts, o.emit,
                                start_commit=tip, timeout=60, prefix="worker/")
        driver = Driver(DriveOptions(max_workers=4, planner_max_iterations=10, finalization_enabled=False,
                                     finalization_max_attempts=1, grace=1, rules=o.rules),
                        o.scheduler, o.ledger, o.planner, o.merge_queue, o.runner, o.budget, o.state, no_subplanner,
                        o.emit, o.crash, reconciler=reconciler, gated_checks=False)
        yield Built(o, driver, sink)
    finally:
        await model.aclose()


@pytest.fixture
async def built(tmp_path: Path, fake_llm, remote) -> AsyncIterator[Built]:
    async with driving(tmp_path, fake_llm, remote, RunBudget(max_tokens=1000, max_cost_usd=2.5)) as parts:
        yield parts


def task(task_id: str, **extra: object) -> Task:
    return Task(id=task_id, description=f"do {task_id} " + "x" * 100, branch=f"worker/{task_id}", **extra)  # type: ignore[arg-type]


async def test_a_task_id_is_used_once_per_run(built: Built) -> None:
    orchestrator, driver, sink = built.orchestrator, built.driver, built.sink
    driver.add([task("a"), task("b")])
    driver.add([task("a", scope=["other.py"]), task("c")])
    assert list(orchestrator.scheduler.tasks) == ["a", "b", "c"]
    [rejected] = sink.of_type(TaskRejected)
    assert (rejected.task_id, rejected.reason) == ("a", "an id already used in this run")
    assert orchestrator.scheduler.tasks["a"].scope == []  # the first one stays
    assert driver.changed.is_set()


async def test_a_continuation_starts_from_its_tasks_branch_and_serves_its_feature(
        built: Built) -> None:
    orchestrator, driver, sink = built.orchestrator, built.driver, built.sink
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
        built: Built) -> None:
    orchestrator, driver = built.orchestrator, built.driver
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
    async with driving(tmp_path, fake_llm, remote, RunBudget()) as parts:
        parts.orchestrator.budget.add("worker", None, 400, 0.75)
        assert parts.driver.progress().budget == ""


async def test_the_planning_state_round_trips_with_the_planners_live_notes(
        built: Built) -> None:
    orchestrator, driver = built.orchestrator, built.driver
    tip = await orchestrator.hub.tip()
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
