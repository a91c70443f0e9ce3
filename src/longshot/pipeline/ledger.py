"""The ledger: what each ended task means for the run.

It turns handoffs and merge results into status moves, sends completed work to the merge
queue, keeps the reports the planners read (a subtask reports to its parent's subplanner,
everything else to the root planner), records work left unlanded, and notices when every
subtask of a decomposed parent has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from longshot.budget import RunBudget
from longshot.events import Emit, HandoffReceived
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.schedule import Scheduler
from longshot.types import ENDED, TRANSITIONS, Handoff, MergeResult, Task, TaskStatus


RETRIED = ("failed", "blocked")
"""Worker outcomes retried once automatically before the planner hears of them."""


class LedgerState(BaseModel):
    """The ledger's part of the durable state (its handoffs are recorded beside it)."""

    unlanded: dict[str, str] = Field(default_factory=dict)
    conflict_fixes: int = 0
    reports: dict[str, dict[str, object]] = Field(default_factory=dict)
    unsent: list[str] = Field(default_factory=list)
    child_reports: dict[str, list[str]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    parents_to_review: list[str] = Field(default_factory=list)


class Ledger:
    def __init__(self, scheduler: Scheduler, merge_queue: MergeQueue, budget: RunBudget, emit: Emit, *,
                 max_conflict_fixes: int = 30, prefix: str = "worker/", max_attempts: int = 2,
                 free_branch: Callable[[str], str] = lambda b: b) -> None:
        self.scheduler = scheduler
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.free_branch = free_branch
        self.max_conflict_fixes = max_conflict_fixes
        self.conflict_fixes = 0
        self.merge_queue = merge_queue
        self.budget = budget
        self.emit = emit
        self.handoffs: dict[str, Handoff] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.unsent: list[str] = []
        self.child_reports: dict[str, list[str]] = {}
        self.unlanded: dict[str, str] = {}
        self.notes: list[str] = []
        self.parents_to_review: list[str] = []

    def handoff(self, task: Task, handoff: Handoff) -> None:
        """A worker ended (or a parent's children did): record, move, maybe merge."""
        handoff.metrics.cost_usd = round(self.budget.cost_by_task.get(task.id, handoff.metrics.cost_usd), 6)
        handoff.metrics.tokens_used = self.budget.by_task.get(task.id, handoff.metrics.tokens_used)
        self.handoffs[task.id] = handoff
        self.emit(HandoffReceived(task_id=task.id, handoff=handoff))
        if self._retry(task, handoff):
            return
        self._report(task, handoff)
        if task.status == TaskStatus.DECOMPOSED:
            done = handoff.status == "complete"
            self.scheduler.move(task, TaskStatus.COMPLETED if done else TaskStatus.PARTIAL, handoff.summary[:300])
        elif handoff.status == "complete" and handoff.commit:
            self.scheduler.move(task, TaskStatus.MERGING)
            self.merge_queue.submit(task, handoff.commit)
            return
        elif handoff.status == "complete":
            self.scheduler.move(task, TaskStatus.UNCHANGED, "complete without changes")
        else:
            self.scheduler.move(task, TaskStatus(handoff.status), handoff.summary[:300])
            if handoff.status == "partial" and handoff.commit:
                self.unlanded[task.id] = "partial work on its branch"
        self._ended(task)

    def _retry(self, task: Task, handoff: Handoff) -> bool:
        """A worker that failed or was blocked gets one more attempt (from its own branch) before
        the planner decides; a spent budget means no more attempts."""
        if (handoff.status not in RETRIED or task.status != TaskStatus.RUNNING or task.attempts >= self.max_attempts
                or self.budget.exhausted):
            return False
        self.scheduler.move(task, TaskStatus(handoff.status), handoff.summary[:300])
        task.history.append(f"{handoff.status}: {handoff.summary[:500]}")
        self.scheduler.move(task, TaskStatus.PENDING, f"attempt {task.attempts + 1} of {self.max_attempts} after "
                                                      f"it {handoff.status}")
        return True

    def merged(self, task: Task, result: MergeResult) -> None:
        self.reports[task.id]["landed"] = result.landed or result.already_landed
        if result.landed:
            self.scheduler.move(task, TaskStatus.LANDED)
            self.unlanded.pop(task.id, None)
            self._supersede(task)
        elif result.already_landed:  # landing it again would be a commit that changes nothing
            self.scheduler.move(task, TaskStatus.SUPERSEDED, result.reason)
            self.unlanded.pop(task.id, None)
            self._supersede(task)
        else:
            self.scheduler.move(task, TaskStatus.FAILED, result.reason)
            self.unlanded[task.id] = result.reason
            if result.conflicts and self.scheduler.hot is not None:
                self.scheduler.hot.conflicted(result.conflicts)
            fix = self._conflict_fix(task, result)
            self.notes.append(f"{task.id} did NOT land: {result.reason}"
                              + (f"; {fix.id} resolves the conflict" if fix else ""))
        self._ended(task)

    def _supersede(self, task: Task) -> None:
        """The tasks ``task`` carried on (continue_from, replaces), and the ones they carried on,
        are superseded: their work is on the target branch now."""
        todo = [x for x in (task.continue_from, task.replaces) if x]
        while todo:
            earlier = self.scheduler.tasks.get(todo.pop())
            if earlier is None or TaskStatus.SUPERSEDED not in TRANSITIONS[earlier.status]:
                continue
            self.scheduler.move(earlier, TaskStatus.SUPERSEDED, f"carried on by {task.id}, which landed")
            self.unlanded.pop(earlier.id, None)
            todo += [x for x in (earlier.continue_from, earlier.replaces) if x]

    def _conflict_fix(self, task: Task, result: MergeResult) -> Task | None:
        """A priority-1 task that resolves the conflict markers on a branch from the current tip."""
        source = self.handoffs[task.id].commit if task.id in self.handoffs else None
        if not result.conflicts or task.kind == "conflict-fix" or source is None:
            return None
        if f"{task.id}-conflict-fix" in self.scheduler.tasks:
            return None  # finalization re-landed the task and it conflicted again: one fix per task
        if self.conflict_fixes >= self.max_conflict_fixes:
            self.notes.append(f"no conflict fix for {task.id}: the run's {self.max_conflict_fixes} are used up")
            return None
        self.conflict_fixes += 1
        fix = Task(
            id=f"{task.id}-conflict-fix", kind="conflict-fix", priority=1, scope=result.conflicts,
            branch=self.free_branch(f"{self.prefix}{task.id}-conflict-fix"), source_commit=source, continue_from=task.id,
            parent=task.parent, depth=task.depth, atomic=True, feature=task.feature,
            allow_protected=task.allow_protected, allow_removed_tests=task.allow_removed_tests,  # the same change
            description=(f"Resolve the merge conflict markers (<<<<<<< ======= >>>>>>>) in {', '.join(result.conflicts)}. "
                         f"They come from landing task {task.id} on top of newer work on the target branch. Keep "
                         f"the intent of both sides, and make the project's tests pass. Task {task.id} was: "
                         f"{task.description}"),
            acceptance="No conflict markers remain; both sides' behaviour is kept; the tests pass.",
        )
        self.scheduler.add(fix)
        return fix

    def relandable(self, *, gated: bool) -> list[Task]:
        """Completed (or, with a gate, partial) work on a branch that has not landed yet."""
        found = []
        for task_id in sorted(self.unlanded):
            task = self.scheduler.tasks[task_id]
            handoff = self.handoffs.get(task_id)
            fix = self.scheduler.tasks.get(f"{task_id}-conflict-fix")
            if handoff is None or handoff.commit is None or (fix is not None and fix.status not in ENDED):
                continue
            if task.status == TaskStatus.FAILED or (gated and task.status == TaskStatus.PARTIAL):
                found.append(task)
        return found

    def reland(self, task: Task) -> None:
        """Send a task's branch to the merge queue again (finalization)."""
        commit = self.handoffs[task.id].commit
        assert commit is not None
        self.scheduler.move(task, TaskStatus.MERGING, "finalization: landing again on the current tip")
        self.merge_queue.submit(task, commit)

    def _ended(self, task: Task) -> None:
        """When the last running child of a parent ends, queue the parent for review (children
        waiting for a sibling that ended without landing count as ended: only the subplanner
        can re-plan that sibling or give it up)."""
        if task.parent is None:
            return
        waiting = {t.id for t in self.scheduler.waiting()}
        siblings = self.scheduler.children(task.parent)
        if all(s.status in ENDED or s.id in waiting for s in siblings) and task.parent not in self.parents_to_review:
            self.parents_to_review.append(task.parent)

    def _report(self, task: Task, handoff: Handoff) -> None:
        self.reports[task.id] = {
            "task_id": task.id, "status": handoff.status, "summary": handoff.summary[:600],
            "files_changed": handoff.files_changed[:30], "concerns": handoff.concerns,
            "suggestions": handoff.suggestions,
            "landed": None if handoff.status == "complete" and handoff.commit else False,
        }
        if task.parent is not None:
            self.child_reports.setdefault(task.parent, []).append(task.id)
        else:
            self.unsent.append(task.id)

    def take_notes(self) -> list[str]:
        """Notes for the planner's next prompt (failed landings, spent conflict fixes), once each."""
        notes, self.notes = self.notes, []
        return notes

    def take_reports(self) -> list[dict[str, Any]]:
        ids, self.unsent = self.unsent, []
        return [self.reports[i] for i in ids]

    def take_child_reports(self, parent_id: str) -> list[dict[str, Any]]:
        ids = self.child_reports.pop(parent_id, [])
        return [self.reports[i] for i in ids]

    def snapshot(self) -> tuple[LedgerState, dict[str, Handoff]]:
        """What a resumed run needs of the ledger, and the handoffs received so far."""
        return LedgerState(
            unlanded=dict(self.unlanded), conflict_fixes=self.conflict_fixes, reports=dict(self.reports),
            unsent=list(self.unsent), child_reports={k: list(v) for k, v in self.child_reports.items()},
            notes=list(self.notes), parents_to_review=list(self.parents_to_review)), dict(self.handoffs)

    def restore(self, saved: LedgerState, handoffs: dict[str, Handoff]) -> None:
        """Continue from a recorded run's ledger."""
        self.handoffs.update(handoffs)
        self.unlanded.update(saved.unlanded)
        self.conflict_fixes = saved.conflict_fixes
        self.reports.update(saved.reports)
        self.unsent += saved.unsent
        self.child_reports.update({k: list(v) for k, v in saved.child_reports.items()})
        self.notes += saved.notes
        self.parents_to_review += saved.parents_to_review

    def settled(self, task_id: str) -> None:
        """Git says ``task_id``'s work is on the target (landed, or carried on): nothing is unlanded."""
        self.unlanded.pop(task_id, None)

    def review_parent(self, parent_id: str) -> None:
        """All of ``parent_id``'s subtasks ended: its subplanner is to see them (once)."""
        if parent_id not in self.parents_to_review:
            self.parents_to_review.append(parent_id)
