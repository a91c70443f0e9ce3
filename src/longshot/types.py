"""The vocabulary every stage shares: tasks, their state machine, handoffs.

``TRANSITIONS`` is the single authority on how a task's status may change; `Task.move`
refuses anything else with `IllegalTransition`. Values cross process and file
boundaries (events, git notes, the fake model), so they are pydantic models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from longshot.caps import Acceptance, Description, Ids, Name, Notes, Scope, Summary
from longshot.errors import IllegalTransition
from longshot.clip import clip


class TaskStatus(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"  # planned; waiting for its dependencies and a free worker slot
    RUNNING = "running"  # a worker is on it
    MERGING = "merging"  # handed off complete with changes; queued for the merge queue
    LANDED = "landed"  # its commit is on the target branch (terminal)
    UNCHANGED = "unchanged"  # handed off complete but changed nothing; nothing to land (terminal)
    PARTIAL = "partial"  # the worker stopped before finishing; its work is on its branch
    BLOCKED = "blocked"  # the worker could not proceed and said why
    FAILED = "failed"  # the worker, the merge or a dependency failed (reason recorded)
    CANCELLED = "cancelled"  # the run stopped before the task ended
    SUPERSEDED = "superseded"  # its work was carried on by a continuation task that landed
    DECOMPOSED = "decomposed"  # split into subtasks by a subplanner; waiting for them
    COMPLETED = "completed"  # done through its subtasks, which all landed (terminal; no branch of its own)


TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.LANDED, TaskStatus.UNCHANGED, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED, TaskStatus.COMPLETED}
)
"""Statuses a task never leaves. Partial, blocked and failed may be retried (→ pending)."""

ENDED: frozenset[TaskStatus] = TERMINAL | {
    TaskStatus.PARTIAL,
    TaskStatus.BLOCKED,
    TaskStatus.FAILED,
}
"""Statuses in which no worker or merge is working on the task now."""

DONE: frozenset[TaskStatus] = frozenset(
    {TaskStatus.LANDED, TaskStatus.UNCHANGED, TaskStatus.COMPLETED, TaskStatus.SUPERSEDED}
)
"""Ended well: the task's work is on the target branch, or it needed none. (The one definition:
the monitor, the dashboard and the report count these as done.)"""

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.PENDING,  # the run was interrupted: its work is salvaged and it is dispatched again
            TaskStatus.DECOMPOSED,
            TaskStatus.MERGING,
            TaskStatus.UNCHANGED,
            TaskStatus.PARTIAL,
            TaskStatus.BLOCKED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    # Superseded from merging: the change is already on the target branch (a successor landed it).
    TaskStatus.MERGING: frozenset({TaskStatus.LANDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED}),
    # Partial and failed work with a commit may be sent to the merge queue again by finalization.
    TaskStatus.PARTIAL: frozenset({TaskStatus.PENDING, TaskStatus.MERGING, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED}),
    TaskStatus.BLOCKED: frozenset({TaskStatus.PENDING, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED}),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING, TaskStatus.MERGING, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED}),
    TaskStatus.LANDED: frozenset(),
    TaskStatus.UNCHANGED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
    TaskStatus.SUPERSEDED: frozenset(),
    TaskStatus.DECOMPOSED: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.PARTIAL, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
}


class RawTask(BaseModel):
    """A task as the planner wrote it, before validation. Only ``description`` is required."""

    model_config = ConfigDict(extra="ignore")

    id: Name | None = None
    description: Description
    scope: Scope = Field(default_factory=list)
    acceptance: Acceptance = ""
    branch: Name | None = None
    priority: int = 5
    depends_on: Ids = Field(default_factory=list)
    continue_from: Name | None = None
    allow_protected: bool = False
    allow_removed_tests: list[str] = Field(default_factory=list)
    exclusive: bool = False
    replaces: Name | None = None
    union_merge: Scope = Field(default_factory=list)
    fixes: Ids = Field(default_factory=list)
    """Reconciler answers only: the labels (F1, F2 ...) of the failures this task fixes."""
    feature: Name | None = None
    """The id of the FEATURES.json feature (or planned work item) this task serves."""


class Task(BaseModel):
    """A validated unit of work: one worker, one branch, one landing commit."""

    model_config = ConfigDict(validate_assignment=True)

    id: str
    description: Description
    scope: Scope = Field(default_factory=list)
    acceptance: Acceptance = ""
    branch: str
    priority: int = 5
    """Lower runs first (1 is the most urgent)."""
    depends_on: Ids = Field(default_factory=list)
    """Ids of tasks that must have landed before this one starts."""
    continue_from: str | None = None
    """A partial, blocked or failed task whose branch this task starts from and finishes."""
    base_branch: str | None = None
    """Branch in the hub to start from instead of the target tip (set for continuations)."""
    parent: str | None = None
    """The task a subplanner split into this one."""
    depth: int = 0
    """How many subplanners lie between this task and the root planner."""
    atomic: bool = False
    """A subplanner judged it small enough for one worker: never split again."""
    kind: Literal["task", "conflict-fix", "fix", "verify"] = "task"
    """``fix``: issued by the reconciler for a failure on the target branch; ``verify``: issued by
    finalization to prove a feature whose work landed without a test (`pipeline/features.py`)."""
    feature: Name | None = None
    """The feature this task serves (named by the planner; subtasks and conflict fixes inherit it)."""
    fixes: list[str] = Field(default_factory=list)
    """For a fix task: the failure signatures it was issued for (see `pipeline/failures.py`)."""
    source_commit: str | None = None
    """For a conflict fix: the commit whose change must be merged onto the tip."""
    allow_protected: bool = False
    """The planner allowed this task to touch CI and check configuration."""
    allow_removed_tests: list[str] = Field(default_factory=list)
    """Tests of the base this task may delete or skip (ids such as ``tests/test_a.py::test_x``,
    files, folders or ``fnmatch`` patterns); any other test that passed on the base must still
    run and pass for the task to land."""
    exclusive: bool = False
    """The planner asked that no other task sharing a file of its scope run while this one does."""
    replaces: str | None = None
    """A failed, blocked or partial task whose work this one redoes: its dependents wait for this
    one, and when this one lands the replaced task is superseded."""
    union_merge: list[str] = Field(default_factory=list)
    """Line-set files of this task (one entry per line, order irrelevant): a conflict confined
    to them is resolved by keeping both sides' lines (besides UNION_MERGE_FILES)."""
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    """How many times a worker was started on it (retries and re-dispatches after a crash included)."""
    history: list[str] = Field(default_factory=list)
    """How earlier attempts ended, oldest first (shown to the worker of the next attempt)."""
    reason: str = ""
    """Why the task is failed, blocked or partial (empty otherwise)."""

    def title(self, limit: int = 72) -> str:
        """The description on one line of at most ``limit`` characters, cut between words (a
        commit subject, a row of a table); the id when there is no description."""
        return clip(self.description, limit) or self.id

    def move(self, to: TaskStatus, reason: str = "") -> TaskStatus:
        """Change status if ``TRANSITIONS`` allows it; return the previous status."""
        before = self.status
        if to not in TRANSITIONS[before]:
            raise IllegalTransition(f"task {self.id}: {before} -> {to} is not allowed")
        self.status = to
        self.reason = reason
        return before


HandoffStatus = Literal["complete", "partial", "blocked", "failed"]


class HandoffMetrics(BaseModel):
    """Figures the orchestrator measures; never taken from the model's word."""

    lines_added: int = 0
    lines_removed: int = 0
    files_created: int = 0
    files_modified: int = 0
    tokens_used: int = 0
    tool_calls: int = 0
    duration_ms: int = 0
    cost_usd: float = 0.0


class Handoff(BaseModel):
    """What a worker reports when its task ends (DESIGN §3.4). The diff stays in git."""

    task_id: str
    status: HandoffStatus
    summary: Summary
    files_changed: list[str] = Field(default_factory=list)
    concerns: Notes = Field(default_factory=list)
    suggestions: Notes = Field(default_factory=list)
    metrics: HandoffMetrics = Field(default_factory=HandoffMetrics)
    commit: str | None = None
    """The commit on the task's branch holding the work, or None when nothing changed."""


FeatureStatusName = Literal["verified", "claimed", "failing", "missing"]
"""A feature's status in the ledger (docs/features.md)."""


class FeatureLine(BaseModel):
    """What the feature ledger says of one feature (`pipeline/features.py`, the ``feature.status`` event)."""

    name: str = ""
    status: FeatureStatusName = "missing"
    tasks: list[str] = Field(default_factory=list)
    """The tasks that worked on it."""
    commits: list[str] = Field(default_factory=list)
    """The commits on the target branch that landed them."""
    tests: list[str] = Field(default_factory=list)
    """The test files and commands that prove it."""
    evidence: str = ""
    """Why it has its status: the tests that passed or failed, or what is missing."""
    asked: bool = True
    """Whether the run was asked to build it (then it decides the exit code)."""


class MergeResult(BaseModel):
    """Outcome of one landing attempt by the merge queue."""

    task_id: str
    landed: bool
    commit: str | None = None
    """The new tip of the target branch when landed."""
    reason: str = ""
    conflicts: list[str] = Field(default_factory=list)
    already_landed: bool = False
    """Not landed because merged onto the tip it changes nothing: its work is there already."""



CheckKind = Literal["build", "types", "test"]
"""What breakage a check finds; the reconciler fixes build, then types, then tests."""


class CheckResult(BaseModel):
    """One check command run on a tree."""

    command: str
    kind: CheckKind = "test"
    exit_code: int
    output_tail: str = ""
    timed_out: bool = False
    tests: dict[str, str] | None = None
    """Per-test outcomes (``passed``, ``failed``, ``skipped``) when a pinned test runner reported
    them (gate checks only, see `pipeline/pin.py`); None when none did."""
    collect_errors: list[str] = Field(default_factory=list)
    """What the test runner could not collect (test files, folders), with ``tests``."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out
