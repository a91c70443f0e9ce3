"""The ledger (`pipeline/ledger.py`) at its edges: measured figures win over the worker's, how
many attempts a task gets, what a split task's end means, chains of carried-on work, the limit
on conflict fixes, which unlanded work finalization lands again, and whose planner hears of
what. On the real scheduler and merge queue (its queue only)."""

from __future__ import annotations

from pathlib import Path

from longshot.budget import RunBudget
from longshot.events import MemorySink, TaskStatusChanged
from longshot.hub import Hub
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.schedule import Scheduler
from longshot.types import Handoff, HandoffMetrics, MergeResult, Task, TaskStatus


def parts(tmp_path: Path, **options: object) -> tuple[Ledger, Scheduler, MergeQueue, MemorySink, RunBudget]:
    sink = MemorySink()
    scheduler = Scheduler(sink)
    queue = MergeQueue(Hub(tmp_path / "hub.git", str(tmp_path / "none.git"), "main", ("T", "t@x")), "rebase", sink)
    budget = RunBudget()
    return Ledger(scheduler, queue, budget, sink, **options), scheduler, queue, sink, budget  # type: ignore[arg-type]


def started(scheduler: Scheduler, id: str, **fields: object) -> Task:
    t = Task(id=id, description=f"do {id}", branch=f"worker/{id}", **fields)  # type: ignore[arg-type]
    scheduler.add(t)
    scheduler.move(t, TaskStatus.RUNNING)
    return t


def ended(status: str, id: str, commit: str | None = None, summary: str = "", **fields: object) -> Handoff:
    return Handoff(task_id=id, status=status, summary=summary or f"{id} {status}", commit=commit,  # type: ignore[arg-type]
                   **fields)


def test_the_budgets_figures_replace_what_the_harness_counted(tmp_path: Path) -> None:
    ledger, scheduler, _, _, budget = parts(tmp_path)
    t, u = started(scheduler, "t"), started(scheduler, "u")
    budget.add("worker", "t", 5000, 0.1234567)
    ledger.handoff(t, ended("complete", "t", metrics=HandoffMetrics(tokens_used=1, cost_usd=99.0)))
    ledger.handoff(u, ended("complete", "u", metrics=HandoffMetrics(tokens_used=7, cost_usd=0.5)))
    assert (ledger.handoffs["t"].metrics.tokens_used, ledger.handoffs["t"].metrics.cost_usd) == (5000, 0.123457)
    # A task the budget never charged (a model without usage figures) keeps the harness's own count.
    assert (ledger.handoffs["u"].metrics.tokens_used, ledger.handoffs["u"].metrics.cost_usd) == (7, 0.5)


def test_a_task_gets_max_attempts_and_each_retry_is_in_its_history(tmp_path: Path) -> None:
    ledger, scheduler, _, sink, _ = parts(tmp_path, max_attempts=3)
    t = started(scheduler, "t")
    for attempt in (1, 2):
        ledger.handoff(t, ended("blocked" if attempt == 1 else "failed", "t"))
        assert t.status == TaskStatus.PENDING and t.attempts == attempt
        scheduler.move(t, TaskStatus.RUNNING)
    ledger.handoff(t, ended("failed", "t"))
    assert t.status == TaskStatus.FAILED and t.history == ["blocked: t blocked", "failed: t failed"]
    moves = [e.reason for e in sink.of_type(TaskStatusChanged) if e.after == TaskStatus.PENDING]
    assert moves == ["attempt 2 of 3 after it blocked", "attempt 3 of 3 after it failed"]
    assert [r["task_id"] for r in ledger.take_reports()] == ["t"]  # the planner hears once, at the end


def test_a_split_task_ends_complete_or_partial_by_what_its_children_did(tmp_path: Path) -> None:
    ledger, scheduler, queue, _, _ = parts(tmp_path)
    done, half = started(scheduler, "p"), started(scheduler, "q")
    for t in (done, half):
        scheduler.move(t, TaskStatus.DECOMPOSED)
    ledger.handoff(done, ended("complete", "p", commit="c1"))
    ledger.handoff(half, ended("failed", "q", commit="c2"))  # a split task is never retried as a worker's
    assert (done.status, half.status, queue.depth) == (TaskStatus.COMPLETED, TaskStatus.PARTIAL, 0)


def test_a_landing_supersedes_the_whole_chain_it_carried_on(tmp_path: Path) -> None:
    ledger, scheduler, _, _, _ = parts(tmp_path, max_attempts=1)
    first = started(scheduler, "a")
    ledger.handoff(first, ended("partial", "a", commit="c1"))
    second = started(scheduler, "b", continue_from="a")
    ledger.handoff(second, ended("blocked", "b"))
    assert (first.status, second.status) == (TaskStatus.PARTIAL, TaskStatus.BLOCKED)
    landed_before = started(scheduler, "x")
    ledger.handoff(landed_before, ended("complete", "x", commit="c0"))
    ledger.merged(landed_before, MergeResult(task_id="x", landed=True, commit="tip0"))
    last = started(scheduler, "c", continue_from="b", replaces="x")
    ledger.handoff(last, ended("complete", "c", commit="c3"))

    ledger.merged(last, MergeResult(task_id="c", landed=False, already_landed=True, reason="its change is already there"))

    assert (first.status, second.status, last.status, landed_before.status) == (
        TaskStatus.SUPERSEDED, TaskStatus.SUPERSEDED, TaskStatus.SUPERSEDED, TaskStatus.LANDED)
    assert first.reason == "carried on by c, which landed" and last.reason == "its change is already there"
    assert ledger.unlanded == {} and ledger.reports["c"]["landed"] is True


def test_conflict_fixes_stop_at_the_runs_limit_and_never_fix_a_fix(tmp_path: Path) -> None:
    ledger, scheduler, _, _, _ = parts(tmp_path, max_conflict_fixes=1)
    conflict = MergeResult(task_id="", landed=False, reason="conflict", conflicts=["a.py"])
    a, b = started(scheduler, "a"), started(scheduler, "b")
    for t in (a, b):
        ledger.handoff(t, ended("complete", t.id, commit=f"c-{t.id}"))
        ledger.merged(t, conflict)
    fix = scheduler.tasks["a-conflict-fix"]
    assert "b-conflict-fix" not in scheduler.tasks
    assert ledger.notes == ["a did NOT land: conflict; a-conflict-fix resolves the conflict",
                            "no conflict fix for b: the run's 1 are used up", "b did NOT land: conflict"]
    assert ledger.unlanded == {"a": "conflict", "b": "conflict"}

    ledger, scheduler, _, _, _ = parts(tmp_path)  # room for many fixes: still none for a fix
    a = started(scheduler, "a")
    ledger.handoff(a, ended("complete", "a", commit="c-a"))
    ledger.merged(a, conflict)
    fix = scheduler.tasks["a-conflict-fix"]
    scheduler.move(fix, TaskStatus.RUNNING)
    ledger.handoff(fix, ended("complete", fix.id, commit="c-fix"))
    ledger.merged(fix, conflict)
    assert [t for t in scheduler.tasks if "conflict-fix" in t] == ["a-conflict-fix"] and ledger.conflict_fixes == 1


def test_finalization_lands_again_only_what_is_on_a_branch_and_not_being_fixed(tmp_path: Path) -> None:
    ledger, scheduler, queue, _, _ = parts(tmp_path)
    conflict = MergeResult(task_id="", landed=False, reason="conflict", conflicts=["a.py"])
    fixed, failed, partial, empty = (started(scheduler, i) for i in ("fixed", "failed", "partial", "empty"))
    ledger.handoff(fixed, ended("complete", "fixed", commit="c1"))
    ledger.merged(fixed, conflict)  # gets a fix, still open
    ledger.handoff(failed, ended("complete", "failed", commit="c2"))
    ledger.merged(failed, MergeResult(task_id="failed", landed=False, reason="the gate refused it"))
    ledger.handoff(partial, ended("partial", "partial", commit="c3"))
    ledger.handoff(empty, ended("partial", "empty"))  # partial with nothing committed: nothing to land
    assert set(ledger.unlanded) == {"fixed", "failed", "partial"}

    assert [t.id for t in ledger.relandable(gated=False)] == ["failed"]
    assert [t.id for t in ledger.relandable(gated=True)] == ["failed", "partial"]
    fix = scheduler.tasks["fixed-conflict-fix"]
    scheduler.move(fix, TaskStatus.CANCELLED)
    assert [t.id for t in ledger.relandable(gated=False)] == ["failed", "fixed"]

    depth = queue.depth
    ledger.reland(partial)  # never queued before: partial work waits for finalization
    assert partial.status == TaskStatus.MERGING and partial.reason == "finalization: landing again on the current tip"
    assert queue.depth == depth + 1


def test_subtasks_report_to_their_parent_and_the_parent_is_reviewed_once_all_ended(tmp_path: Path) -> None:
    ledger, scheduler, _, _, _ = parts(tmp_path, max_attempts=1)
    root = started(scheduler, "r")
    k1, k2 = started(scheduler, "p-1", parent="p"), started(scheduler, "p-2", parent="p")
    waiting = Task(id="p-3", description="after p-2", branch="worker/p-3", parent="p", depends_on=["p-2"])
    scheduler.add(waiting)
    ledger.handoff(k1, ended("complete", "p-1", files_changed=[f"f{i}" for i in range(40)],
                             summary="s" * 1000))
    assert ledger.parents_to_review == []  # p-2 still runs
    ledger.handoff(k2, ended("failed", "p-2"))
    assert k2.status == TaskStatus.FAILED and ledger.parents_to_review == ["p"]  # p-3 waits on a failed sibling
    ledger.handoff(root, ended("complete", "r", commit="c-r"))

    reports = ledger.take_child_reports("p")
    assert [r["task_id"] for r in reports] == ["p-1", "p-2"] and ledger.take_child_reports("p") == []
    assert len(reports[0]["summary"]) == 600 and len(reports[0]["files_changed"]) == 30
    assert reports[0]["landed"] is False and reports[1]["landed"] is False  # nothing to land
    [report] = ledger.take_reports()
    assert report["task_id"] == "r" and report["landed"] is None and ledger.take_reports() == []  # not landed yet
