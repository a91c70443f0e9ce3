"""The task ledger and scheduling order.

`Scheduler` owns every task of the run. It is the only place statuses change (through
`move`, which checks the TRANSITIONS table and emits `TaskStatusChanged`), and it decides
what may start next: pending tasks whose dependencies have landed, most urgent priority
first, then in the order they were planned.

Overlapping scopes run at once (SCOPE_OVERLAP=allow, the default): the merge queue's
three-way merge lands disjoint edits of one file. A task waits for a running or merging task
that shares a file with it only when both are conflict fixes, when either is marked
``exclusive`` by its planner, or when the file is hot (`pipeline/hotfiles.py`);
SCOPE_OVERLAP=hold makes every overlap wait.

A dependency that failed, was blocked or stopped partial may still be retried or re-planned:
its dependents wait while it is, or while a task carrying it on is open (a continuation, a
conflict fix, a task that ``replaces`` it). They fail only when no such task is open and the
planner has given the work up (`give_up`), or at once when the dependency can never land
(unknown, cancelled, unchanged).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from longshot.events import Emit, TaskCreated, TaskStatusChanged
from longshot.pipeline.hotfiles import HotFiles
from longshot.types import ENDED, TERMINAL, Task, TaskStatus

DEPENDENCY_MET = frozenset({TaskStatus.LANDED, TaskStatus.SUPERSEDED, TaskStatus.COMPLETED})
"""A dependency in one of these states is satisfied: its work is on the target branch (an
``unchanged`` task is done, but put nothing there to build on)."""


class Scheduler:
    def __init__(self, emit: Emit, *, hold_overlaps: bool = False, hot: HotFiles | None = None) -> None:
        self.emit = emit
        self.hold_overlaps = hold_overlaps
        self.hot = hot
        self.tasks: dict[str, Task] = {}
        self._order: dict[str, int] = {}
        # Task ids by status, kept by `add` and `move` (the only ways a status changes once a
        # task is here), so a look at the few running tasks does not walk the whole run.
        self._by_status: dict[TaskStatus, dict[str, Task]] = {status: {} for status in TaskStatus}

    def snapshot(self) -> list[Task]:
        """Every task as it is now, in the order planned (copies: the record does not move with them)."""
        return [t.model_copy() for t in self.tasks.values()]

    def live(self) -> list[Task]:
        """Every task itself, in the order planned: for a record written out at once (the state
        writer serializes it before anything else runs), where `snapshot`'s copies cost 500 model
        copies per write and buy nothing. Never keep it."""
        return list(self.tasks.values())

    def add(self, task: Task) -> None:
        """A new task (pending), or one restored from the durable state in whatever status it had."""
        if task.id in self.tasks:
            del self._by_status[self.tasks[task.id].status][task.id]
        self.tasks[task.id] = task
        self._order.setdefault(task.id, len(self._order))
        self._by_status[task.status][task.id] = task
        self.emit(TaskCreated(task_id=task.id, description=task.description, branch=task.branch,
                              scope=task.scope, priority=task.priority, depends_on=task.depends_on,
                              parent=task.parent, kind=task.kind, status=task.status, feature=task.feature,
                              acceptance=task.acceptance))
        if self.hot is not None and task.status not in ENDED:
            self.hot.scoped(t for t in self.tasks.values() if t.status not in ENDED)

    def move(self, task: Task, to: TaskStatus, reason: str = "") -> None:
        before = task.move(to, reason)
        del self._by_status[before][task.id]
        self._by_status[to][task.id] = task
        if to == TaskStatus.RUNNING:
            task.attempts += 1
        self.emit(TaskStatusChanged(task_id=task.id, before=before, after=to, reason=reason))

    def with_status(self, *statuses: TaskStatus) -> list[Task]:
        """The tasks in any of ``statuses``, in the order they were planned."""
        found = [t for status in statuses for t in self._by_status[status].values()]
        return sorted(found, key=lambda t: self._order[t.id])

    def ready(self) -> list[Task]:
        """Pending tasks whose dependencies all landed, in the order they should start."""
        return self._ready(self._held())

    def start(self, room: int) -> list[Task]:
        """Move up to ``room`` ready tasks to running, one at a time as if `ready` were asked again
        after each (a task started may hold back the next: a shared file), in one look at the run."""
        if room <= 0:
            return []
        held = self._held()
        started: list[Task] = []
        for task in self._ready(held):
            if len(started) == room:
                break
            if any(self._holds(task, other, path) for path in task.scope for other in held.get(path, ())):
                continue  # held back by a task started in this call
            self.move(task, TaskStatus.RUNNING)
            started.append(task)
            for path in task.scope:
                held.setdefault(path, []).append(task)
        return started

    def _held(self) -> dict[str, list[Task]]:
        """File -> the running or merging tasks whose scope names it."""
        held: dict[str, list[Task]] = {}
        for t in (*self._by_status[TaskStatus.RUNNING].values(), *self._by_status[TaskStatus.MERGING].values()):
            for path in t.scope:
                held.setdefault(path, []).append(t)
        return held

    def _ready(self, held: dict[str, list[Task]]) -> list[Task]:
        self._fail_orphans(final=False)
        ready = [
            t for t in self._by_status[TaskStatus.PENDING].values()
            if all(self.tasks[d].status in DEPENDENCY_MET for d in t.depends_on if d in self.tasks)
            and not any(self._holds(t, other, path) for path in t.scope for other in held.get(path, ()))
        ]
        return sorted(ready, key=lambda t: (t.priority, self._order[t.id]))

    def _holds(self, task: Task, other: Task, path: str) -> bool:
        """Whether ``task`` must wait for ``other``, a running or merging task that names ``path`` too."""
        if other.id == task.id:
            return False
        if self.hold_overlaps or task.exclusive or other.exclusive:
            return True
        if task.kind == other.kind == "conflict-fix":
            return True
        return self.hot is not None and self.hot.is_hot(path)

    def children(self, parent_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.parent == parent_id]

    def carried(self) -> set[str]:
        """Ids of ended tasks whose work an open task carries on (continuation, conflict fix, or a
        task that replaces it), following chains of such tasks back to the first."""
        links = {t.id: [x for x in (t.continue_from, t.replaces) if x] for t in self.tasks.values()}
        found: set[str] = set()
        todo = [x for t in self.tasks.values() if t.status not in ENDED for x in links[t.id]]
        while todo:
            task_id = todo.pop()
            if task_id not in found:
                found.add(task_id)
                todo += links.get(task_id, [])
        return found

    def waiting(self) -> list[Task]:
        """Pending tasks held back by a dependency that ended without landing but may still be
        retried or re-planned (nothing carries it on yet)."""
        carried = self.carried()

        def held_back(dep: str) -> bool:
            d = self.tasks.get(dep)
            return d is not None and d.status in ENDED and d.status not in DEPENDENCY_MET and dep not in carried

        return [t for t in self.with_status(TaskStatus.PENDING) if any(held_back(d) for d in t.depends_on)]

    def give_up(self, parent: str | None = None) -> list[Task]:
        """The planner (or, with ``parent``, that task's subplanner) gave the work up: fail every
        task still waiting for a dependency that ended without landing and that nothing carries
        on. Returns the tasks failed."""
        return self._fail_orphans(final=True, parent=parent)

    def _lost(self, dep: str, carried: Callable[[], set[str]], *, final: bool) -> str | None:
        """Why dependency ``dep`` can no longer land (None: it may still)."""
        d = self.tasks.get(dep)
        if d is None:
            return "unknown"
        if d.status not in ENDED or d.status in DEPENDENCY_MET or dep in carried():
            return None
        if d.status in TERMINAL or final:
            return f"{d.status}"
        return None

    def _fail_orphans(self, *, final: bool, parent: str | None = None) -> list[Task]:
        """Fail pending tasks whose dependency can no longer land (see the module docstring)."""
        failed: list[Task] = []
        changed = True
        while changed:
            changed = False
            carried = functools.cache(self.carried)  # walked only when a dependency ended without landing
            for task in self.with_status(TaskStatus.PENDING):
                for dep in task.depends_on:
                    why = self._lost(dep, carried, final=final and (parent is None or task.parent == parent))
                    if why is not None:
                        self.move(task, TaskStatus.FAILED, f"dependency {dep} ended {why} without landing")
                        failed.append(task)
                        changed = True
                        break
        return failed

    @property
    def active(self) -> list[Task]:
        """Tasks a worker or the merge queue is working on now."""
        return self.with_status(TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.DECOMPOSED)

    def open_work(self) -> bool:
        """Whether anything is running, merging, or could still start."""
        return bool(self.active) or bool(self.ready())
