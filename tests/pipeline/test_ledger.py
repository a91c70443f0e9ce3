"""The ledger: what an ended task means. Handoffs become status moves and merge requests, a failed
worker gets one more attempt, a conflict gets one fix task, landed continuations supersede what
they carried on, and the ledger's record survives a snapshot/restore.

Built on the real scheduler and merge queue (its queue only: no landing is run here).
"""

from __future__ import annotations

from pathlib import Path

from longshot.budget import RunBudget
from longshot.events import HandoffReceived, MemorySink
from longshot.hub import Hub
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.schedule import Scheduler
from longshot.types import Handoff, MergeResult, Task, TaskStatus


class World:
    def __init__(self, tmp: Path, budget: RunBudget | None = None) -> None:
        self.sink = MemorySink()
        self.scheduler = Scheduler(self.sink)
        hub = Hub(tmp / "hub.git", str(tmp / "remote.git"), "main", ("T", "t@localhost"))
        self.queue = MergeQueue(hub, "rebase", self.sink)
        self.ledger = Ledger(self.scheduler, self.queue, budget or RunBudget(), self.sink,
                             free_branch=lambda b: b + "-2" if b.endswith("conflict-fix") else b)

    def running(self, id: str, **fields: object) -> Task:
        task = Task(id=id, description=f"do {id}", branch=f"worker/{id}", **fields)  # type: ignore[arg-type]
        self.scheduler.add(task)
        self.scheduler.move(task, TaskStatus.RUNNING)
        return task

    def end(self, task: Task, status: str, commit: str | None = None, summary: str = "done") -> None:
        self.ledger.handoff(task, Handoff(task_id=task.id, status=status, summary=summary,  # type: ignore[arg-type]
                                          commit=commit))


def test_complete_work_goes_to_the_merge_queue_and_lands(tmp_path: Path) -> None:
    w = World(tmp_path)
    t = w.running("t1")
    w.end(t, "complete", "c1")
    assert t.status == TaskStatus.MERGING and w.queue.depth == 1
    assert [e.task_id for e in w.sink.of_type(HandoffReceived)] == ["t1"]
    w.ledger.merged(t, MergeResult(task_id="t1", landed=True, commit="tip"))
    assert t.status == TaskStatus.LANDED
    assert w.ledger.take_reports()[0]["landed"] is True


def test_complete_without_changes_is_unchanged_and_partial_work_is_remembered(tmp_path: Path) -> None:
    w = World(tmp_path)
    a, b = w.running("a"), w.running("b")
    w.end(a, "complete")
    w.end(b, "partial", "c2", "half of it")
    assert (a.status, b.status) == (TaskStatus.UNCHANGED, TaskStatus.PARTIAL)
    assert w.queue.depth == 0
    assert w.ledger.snapshot()[0].unlanded == {"b": "partial work on its branch"}


def test_a_failed_worker_gets_one_more_attempt_then_the_planner_hears(tmp_path: Path) -> None:
    w = World(tmp_path)
    t = w.running("t1")
    w.end(t, "failed", summary="tests would not pass")
    assert t.status == TaskStatus.PENDING and w.ledger.take_reports() == []
    w.scheduler.move(t, TaskStatus.RUNNING)
    w.end(t, "failed", summary="still failing")
    assert t.status == TaskStatus.FAILED
    assert [r["status"] for r in w.ledger.take_reports()] == ["failed"]


def test_no_retry_once_the_budget_is_spent(tmp_path: Path) -> None:
    budget = RunBudget(max_tokens=10)
    budget.add("worker", "t1", 10, 0.0)
    w = World(tmp_path, budget)
    t = w.running("t1")
    w.end(t, "blocked", summary="needs a decision")
    assert t.status == TaskStatus.BLOCKED


def test_a_conflict_gets_one_fix_task_that_carries_the_work_on(tmp_path: Path) -> None:
    w = World(tmp_path)
    t = w.running("t1", priority=5)
    w.end(t, "complete", "c1")
    w.ledger.merged(t, MergeResult(task_id="t1", landed=False, reason="conflict", conflicts=["a.py"]))
    fix = w.scheduler.tasks["t1-conflict-fix"]
    assert t.status == TaskStatus.FAILED
    assert (fix.kind, fix.priority, fix.scope, fix.source_commit, fix.continue_from) == (
        "conflict-fix", 1, ["a.py"], "c1", "t1")
    assert fix.branch == "worker/t1-conflict-fix-2"  # the validator's free name
    # conflicting again (finalization re-landed it) makes no second fix
    w.scheduler.move(t, TaskStatus.PENDING)
    w.scheduler.move(t, TaskStatus.RUNNING)
    w.end(t, "complete", "c1")
    w.ledger.merged(t, MergeResult(task_id="t1", landed=False, reason="conflict", conflicts=["a.py"]))
    assert [x for x in w.scheduler.tasks if x.endswith("conflict-fix")] == ["t1-conflict-fix"]
    # the fix lands: the original is superseded and nothing is unlanded
    w.scheduler.move(fix, TaskStatus.RUNNING)
    w.end(fix, "complete", "c3")
    w.ledger.merged(fix, MergeResult(task_id=fix.id, landed=True, commit="tip"))
    assert (fix.status, t.status) == (TaskStatus.LANDED, TaskStatus.SUPERSEDED)
    assert w.ledger.snapshot()[0].unlanded == {}


def test_the_ledger_record_round_trips(tmp_path: Path) -> None:
    w = World(tmp_path)
    a, b = w.running("a"), w.running("b")
    w.end(a, "complete", "c1")
    w.end(b, "partial", "c2")
    w.ledger.merged(a, MergeResult(task_id="a", landed=False, reason="conflict", conflicts=["x.py"]))
    saved, handoffs = w.ledger.snapshot()
    again = World(tmp_path)
    again.ledger.restore(saved, handoffs)
    assert again.ledger.snapshot() == (saved, handoffs)
    again.ledger.settled("a")
    again.ledger.review_parent("p")
    again.ledger.review_parent("p")
    state = again.ledger.snapshot()[0]
    assert "a" not in state.unlanded and state.parents_to_review == ["p"]
