"""Each part with durable state saves and restores itself: snapshot -> JSON -> restore -> the same snapshot.

`pipeline/resume.py` composes these; it reaches into no part's fields. A part that forgot a
field in its snapshot, or did not restore one, fails here without a crash-and-resume run.
"""

from __future__ import annotations

from longshot.budget import RunBudget, SpentState
from longshot.events import MemorySink
from longshot.pipeline.parse import NameState, TaskValidator
from longshot.pipeline.schedule import Scheduler
from longshot.pipeline.state import RunState
from longshot.types import Task, TaskStatus


def through_json(record: RunState) -> RunState:
    return RunState.model_validate_json(record.model_dump_json())


def test_the_budget_continues_counting_from_what_was_spent() -> None:
    budget = RunBudget(max_tokens=1000)
    budget.add("worker", "t1", 120, 0.5)
    budget.add("planner", None, 30, 0.25)
    saved = through_json(RunState(run_id="r", request="q", target_branch="main", start_commit="a",
                                  spent=budget.snapshot())).spent
    again = RunBudget(max_tokens=1000)
    again.restore(saved)
    assert again.snapshot() == budget.snapshot() == SpentState(tokens=150, cost_usd=0.75, by_task={"t1": 120},
                                                               cost_by_task={"t1": 0.5})
    again.add("worker", "t1", 1, 0.0)
    assert again.by_task["t1"] == 121


def test_the_validator_never_reuses_a_recorded_id_or_branch() -> None:
    validator = TaskValidator(prefix="worker/", main_branch="main")
    validator.known_ids.update({"t1", "t2"})
    validator.known_branches.add("worker/t1")
    validator.counter = 7
    record = through_json(RunState(run_id="r", request="q", target_branch="main", start_commit="a",
                                   **validator.snapshot().model_dump()))
    again = TaskValidator(prefix="worker/", main_branch="main")
    again.restore(NameState(known_ids=record.known_ids, known_branches=record.known_branches,
                            id_counter=record.id_counter))
    assert again.snapshot() == validator.snapshot()
    again.reserve(["worker/old"])
    assert again.free_branch("worker/old") == "worker/old-2"


def test_the_scheduler_snapshot_is_a_copy_in_plan_order() -> None:
    scheduler = Scheduler(MemorySink())
    for i in (3, 1, 2):
        scheduler.add(Task(id=f"t{i}", description=f"task {i}", branch=f"worker/t{i}"))
    saved = scheduler.snapshot()
    scheduler.move(scheduler.tasks["t1"], TaskStatus.RUNNING)
    assert [t.id for t in saved] == ["t3", "t1", "t2"]
    assert saved[1].status == TaskStatus.PENDING  # the record does not move with the live task
