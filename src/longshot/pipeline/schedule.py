"""The task ledger and scheduling order.

`Scheduler` owns every task of the run. It is the only place statuses change (through
`move`, which checks the TRANSITIONS table and emits `TaskStatusChanged`), and it decides
what may start next: pending tasks whose dependencies have landed, most urgent priority
first, then in the order they were planned. A task whose dependency ended without landing
fails with that reason instead of waiting forever.
"""

from __future__ import annotations

from longshot.events import Emit, TaskCreated, TaskStatusChanged
from longshot.types import ENDED, Task, TaskStatus

DONE = frozenset({TaskStatus.LANDED, TaskStatus.SUPERSEDED, TaskStatus.COMPLETED})
"""A dependency in one of these states is satisfied: its work is on the target branch."""


class Scheduler:
    def __init__(self, emit: Emit, *, hold_overlaps: bool = True) -> None:
        self.emit = emit
        self.hold_overlaps = hold_overlaps
        self.tasks: dict[str, Task] = {}
        self._order: dict[str, int] = {}

    def add(self, task: Task) -> None:
        """A new task (pending), or one restored from the durable state in whatever status it had."""
        self.tasks[task.id] = task
        self._order[task.id] = len(self._order)
        self.emit(TaskCreated(task_id=task.id, description=task.description, branch=task.branch,
                              scope=task.scope, priority=task.priority, depends_on=task.depends_on,
                              parent=task.parent, kind=task.kind, status=task.status, feature=task.feature,
                              acceptance=task.acceptance))

    def move(self, task: Task, to: TaskStatus, reason: str = "") -> None:
        before = task.move(to, reason)
        if to == TaskStatus.RUNNING:
            task.attempts += 1
        self.emit(TaskStatusChanged(task_id=task.id, before=before, after=to, reason=reason))

    def with_status(self, *statuses: TaskStatus) -> list[Task]:
        return [t for t in self.tasks.values() if t.status in statuses]

    def ready(self) -> list[Task]:
        """Pending tasks whose dependencies all landed, in the order they should start."""
        self._fail_orphans()
        held: dict[str, list[Task]] = {}  # file -> the running or merging tasks whose scope names it
        for t in self.with_status(TaskStatus.RUNNING, TaskStatus.MERGING):
            for path in t.scope:
                held.setdefault(path, []).append(t)
        ready = [
            t for t in self.tasks.values()
            if t.status == TaskStatus.PENDING
            and all(self.tasks[d].status in DONE for d in t.depends_on if d in self.tasks)
            and not self._sibling_overlap(t, held)
        ]
        return sorted(ready, key=lambda t: (t.priority, self._order[t.id]))

    def _sibling_overlap(self, task: Task, held: dict[str, list[Task]]) -> bool:
        """Whether ``task`` must wait for a running task that shares a file with it.

        Subtasks of one parent and conflict fixes always wait; other tasks wait unless
        overlaps are allowed (SCOPE_OVERLAP=allow).
        """
        always = task.parent is not None or task.kind == "conflict-fix"
        return any(
            t.id != task.id
            and (self.hold_overlaps or (always and (t.parent == task.parent or t.kind == task.kind)))
            for path in task.scope for t in held.get(path, ())
        )

    def children(self, parent_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.parent == parent_id]

    def _fail_orphans(self) -> None:
        """Fail pending tasks whose dependency ended without landing, unless a task carrying that
        dependency's work on (a conflict fix, a continuation) is still open: if it lands, the
        dependency is superseded, and so satisfied."""
        changed = True
        while changed:
            changed = False
            carried = {t.continue_from for t in self.tasks.values() if t.continue_from and t.status not in ENDED}
            for task in self.with_status(TaskStatus.PENDING):
                for dep in task.depends_on:
                    d = self.tasks.get(dep)
                    if d is None or (d.status in ENDED and d.status not in DONE and dep not in carried):
                        why = "unknown" if d is None else f"{d.status}"
                        self.move(task, TaskStatus.FAILED, f"dependency {dep} ended {why} without landing")
                        changed = True
                        break

    @property
    def active(self) -> list[Task]:
        """Tasks a worker or the merge queue is working on now."""
        return self.with_status(TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.DECOMPOSED)

    def open_work(self) -> bool:
        """Whether anything is running, merging, or could still start."""
        return bool(self.active) or bool(self.ready())
