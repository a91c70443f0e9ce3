"""The dashboard's model of a run: a pure reducer over events.

`Board.apply` folds one event into the state; it does no I/O and never reads a clock,
so a live run, a replay and a report built from the same events agree exactly. Events
of types it does not know are counted and ignored. The state reads event types and
fields only, never message text.

Figures the monitor reports (`run.metrics`) are used when they are the freshest source;
without a monitor every figure is computed from the other events.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from longshot.dashboard.lines import describe, level
from longshot.events import (
    EVENT_TYPES, CheckFinished, ClaimChecked, Event, FeatureStatus, FinalizationAttempt, GateChecked, GateResult, HandoffReceived, LLMUsage, MergeBatch, MergeFailed,
    MergeHealth, MergeLanded, Metrics, PlannerAnswered, PlannerRequested, RunFinished, RunInterrupted, RunStarted,
    SweepFinished, TaskCreated, TaskStatusChanged, WorkerOutput, WorkerStep, PlanPreview, ResultReady,
    ConflictOutcome, ConflictPredicted, FileHot,
)
from longshot.types import DONE as DONE  # re-exported: the dashboard's views read it from here
from longshot.types import HandoffMetrics

FEED_LIMIT = 200
FAILED = frozenset({"failed", "blocked"})
ACTIVE = frozenset({"running", "merging", "decomposed"})


@dataclass
class TaskRow:
    """One task as the dashboard shows it."""

    id: str
    description: str
    created: float
    parent: str | None = None
    kind: str = "task"
    depends_on: list[str] = field(default_factory=list)
    status: str = "pending"
    reason: str = ""
    started: float | None = None
    """When a worker (or subplanner) first took it."""
    worked: float | None = None
    """When its worker ended (the handoff): the running timer stops here."""
    ended: float | None = None
    """When it reached a status no worker or merge is working in."""
    steps: int = 0
    step: str = ""
    step_ok: bool = True
    output: int = 0
    """Bytes the current command has printed so far (`worker.output`), 0 when none is running."""
    handoff: HandoffMetrics | None = None
    handoff_status: str = ""
    files: int = 0
    landed_at: float | None = None
    seconds_to_land: float | None = None
    commit: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    children: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FeedItem:
    ts: float
    level: str
    """``error``, ``warning`` or ``info``."""
    text: str
    """One line of rich markup (see `longshot.dashboard.lines`)."""
    task_id: str | None = None


@dataclass
class Figures:
    """The numbers of the header and the metrics panel at one moment."""

    workers_active: int
    workers_total: int
    pending: int
    done: int
    failed: int
    total: int
    landed: int
    merge_success_rate: float | None
    tokens: int
    cost_usd: float
    queue_depth: int
    source: str
    """``events`` (computed) or ``monitor`` (the latest run.metrics)."""


@dataclass
class Board:
    """Everything the dashboard, the status line and the report show, folded from events."""

    run_id: str = ""
    request: str = ""
    repo: str = ""
    target_branch: str = ""
    log_path: str = ""
    max_workers: int = 0
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    unpriced: list[str] = field(default_factory=list)
    """Models without a known price: the cost is unknown, not $0."""
    result: ResultReady | None = None
    """Where the result is and how to take it (the end of a run)."""
    plan: PlanPreview | None = None
    """``--plan-only``: the recorded plan and its estimate."""
    started: float | None = None
    now: float = 0.0
    """The time of the latest event."""
    finished: RunFinished | None = None
    interrupted: bool = False
    planner_since: float | None = None
    """When the planner's current request went out (None: not thinking)."""
    planner_iteration: int = 0
    planner_tasks: int = 0
    tasks: dict[str, TaskRow] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    cost_usd: float = 0.0
    tokens_by_role: Counter[str] = field(default_factory=Counter)
    merge_landed: int = 0
    merge_failed: int = 0
    conflicts: int = 0
    predicted: int = 0
    """Conflicts predicted while workers ran (`conflict.predicted`)."""
    avoided: int = 0
    """Warned tasks that then landed without a conflict (`conflict.outcome`)."""
    hot_files: dict[str, str] = field(default_factory=dict)
    """Hot files (`file.hot`): path -> why."""
    gate_refused: int = 0
    gate: GateResult | None = None
    batch: MergeBatch | None = None
    health: MergeHealth | None = None
    checked_by: GateChecked | None = None
    """How many landings tests, collection alone, or exit codes alone vouched for."""
    metrics: Metrics | None = None
    waits: list[float] = field(default_factory=list)
    landings: list[float] = field(default_factory=list)
    """When each landing happened (for the velocity sparkline and the report)."""
    active_series: list[tuple[float, int]] = field(default_factory=list)
    """(time, workers busy) at every change."""
    checks: list[CheckFinished] = field(default_factory=list)
    """The final checks on the target branch."""
    sweep: SweepFinished | None = None
    finalization: int = 0
    features: dict[str, FeatureStatus] = field(default_factory=dict)
    """The feature ledger: the latest `feature.status` of each feature, in the order first seen."""
    claims: dict[str, list[int]] = field(default_factory=dict)
    """``role/model`` -> [completes checked, unverified] (`claim.checked`)."""
    unverified: list[ClaimChecked] = field(default_factory=list)
    feed: deque[FeedItem] = field(default_factory=lambda: deque(maxlen=FEED_LIMIT))
    """The latest meaningful events as lines (the activity feed; warnings and errors are the alerts)."""
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=FEED_LIMIT))
    """The latest events of every type (the activity feed with ``--debug``)."""
    warnings: int = 0
    errors: int = 0
    events: int = 0
    ignored: int = 0
    _changed: float = 0.0
    """Time of the latest event that changed a figure the monitor also reports."""
    _orphans: dict[str, list[str]] = field(default_factory=dict)
    """Parent id -> subtasks announced before it (attached to it when it is announced)."""

    def apply(self, event: Event) -> None:
        """Fold one event into the state. Unknown event types are counted and ignored."""
        handler = _HANDLERS.get(type(event))
        self.events += 1
        if event.ts > self.now:
            self.now = event.ts
        if handler is None and event.type not in _DESCRIBED:
            self.ignored += 1
            return
        self.recent.append(event)
        if handler is not None:
            handler(self, event)
        line = describe(event)
        if line is not None:
            kind = level(event)
            self.feed.append(FeedItem(event.ts, kind, line, event.task_id))
            self.warnings += kind == "warning"
            self.errors += kind == "error"

    # -- derived figures ---------------------------------------------------------------

    @property
    def workers_active(self) -> int:
        return self.statuses["running"]

    def figures(self) -> Figures:
        """Counts from the events, or from the monitor when its report is the freshest."""
        s = self.statuses
        tried = self.merge_landed + self.merge_failed
        figures = Figures(
            workers_active=s["running"], workers_total=self.max_workers, pending=s["pending"],
            done=sum(s[x] for x in DONE), failed=sum(s[x] for x in FAILED), total=len(self.tasks),
            landed=self.merge_landed, merge_success_rate=self.merge_landed / tried if tried else None,
            tokens=self.tokens, cost_usd=self.cost_usd,
            queue_depth=self.health.queue_depth if self.health else s["merging"], source="events")
        m = self.metrics
        if m is not None and m.ts >= self._changed:
            figures.workers_active, figures.workers_total = m.workers_active, m.workers_total or self.max_workers
            figures.pending, figures.done, figures.failed, figures.landed = m.pending, m.done, m.failed, m.landed
            figures.merge_success_rate, figures.queue_depth = m.merge_success_rate, m.queue_depth
            figures.tokens, figures.cost_usd = max(m.tokens, self.tokens), max(m.cost_usd, self.cost_usd)
            figures.source = "monitor"
        return figures

    def elapsed(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        if self.finished is not None:
            return self.finished.duration_s or self.finished.ts - self.started
        return max(0.0, (now if now is not None else self.now) - self.started)

    def landed_per_hour(self, now: float | None = None) -> float:
        hours = self.elapsed(now) / 3600
        return self.merge_landed / hours if hours > 0 else 0.0

    def velocity(self, buckets: int = 20, now: float | None = None, window: float = 600.0) -> tuple[list[int], float]:
        """Landings per bucket over the last ``window`` seconds (or the run so far), and the bucket width."""
        end = now if now is not None else self.now
        span = max(1.0, min(window, self.elapsed(end) or 1.0))
        width = span / buckets
        counts = [0] * buckets
        for t in reversed(self.landings):
            age = end - t
            if age >= span:
                break
            counts[max(0, buckets - 1 - int(age / width))] += 1
        return counts, width

    def feature_counts(self) -> dict[str, int]:
        """Features per status (verified, claimed, failing, missing)."""
        found = Counter(f.status for f in self.features.values())
        return {status: found[status] for status in ("verified", "claimed", "failing", "missing")}

    def roots(self) -> list[TaskRow]:
        return [t for t in self.tasks.values() if t.parent is None or t.parent not in self.tasks]

    # -- event handlers ----------------------------------------------------------------

    def _set_status(self, row: TaskRow, status: str, ts: float) -> None:
        self.statuses[row.status] -= 1
        self.statuses[status] += 1
        was_running = row.status == "running"
        row.status = status
        if status == "running" and (row.started is None or row.worked is not None):
            row.started, row.worked, row.output = ts, None, 0  # a new attempt: its own timer
        if status not in ACTIVE and status != "pending":
            row.ended = ts
        elif status in ACTIVE:
            row.ended = None
        if was_running != (status == "running"):
            self.active_series.append((ts, self.statuses["running"]))
        self._changed = ts


def _run_started(s: Board, e: RunStarted) -> None:
    s.run_id, s.request, s.repo, s.target_branch = e.run_id, e.request, e.repo, e.target_branch
    s.log_path, s.max_workers, s.started = e.log_path, e.max_workers, e.ts
    s.max_tokens, s.max_cost_usd, s.unpriced = e.max_tokens, e.max_cost_usd, list(e.unpriced_models)
    s.active_series.append((e.ts, 0))


def _run_finished(s: Board, e: RunFinished) -> None:
    s.finished = e
    s.planner_since = None


def _planner_requested(s: Board, e: PlannerRequested) -> None:
    s.planner_since, s.planner_iteration = e.ts, e.iteration


def _planner_answered(s: Board, e: PlannerAnswered) -> None:
    s.planner_since = None
    s.planner_tasks += e.tasks


def _task_created(s: Board, e: TaskCreated) -> None:
    if e.task_id is None or e.task_id in s.tasks:
        return
    s.tasks[e.task_id] = TaskRow(id=e.task_id, description=e.description, created=e.ts, parent=e.parent,
                                 kind=e.kind, depends_on=list(e.depends_on), status=e.status)
    s.statuses[e.status] += 1  # a resumed run re-announces its tasks with their current status
    s._changed = e.ts
    if e.parent in s.tasks:
        s.tasks[e.parent].children.append(e.task_id)
    elif e.parent is not None:
        s._orphans.setdefault(e.parent, []).append(e.task_id)
    s.tasks[e.task_id].children += s._orphans.pop(e.task_id, [])


def _task_status(s: Board, e: TaskStatusChanged) -> None:
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        s._set_status(row, e.after, e.ts)
        row.reason = e.reason


def _worker_step(s: Board, e: WorkerStep) -> None:
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        row.steps, row.step_ok, row.output = e.step, e.ok, 0
        row.step = f"{e.tool} {e.detail}".strip()


def _output(s: Board, e: WorkerOutput) -> None:
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        row.output = e.bytes


def _usage(s: Board, e: LLMUsage) -> None:
    tokens = e.prompt_tokens + e.completion_tokens
    s.tokens += tokens
    s.cost_usd += e.cost_usd
    s.tokens_by_role[e.role] += tokens
    s._changed = e.ts
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        row.tokens += tokens
        row.cost_usd += e.cost_usd


def _handoff(s: Board, e: HandoffReceived) -> None:
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        row.handoff, row.handoff_status = e.handoff.metrics, e.handoff.status
        row.files, row.worked = len(e.handoff.files_changed), e.ts
        row.tokens = max(row.tokens, e.handoff.metrics.tokens_used)
        row.cost_usd = max(row.cost_usd, e.handoff.metrics.cost_usd)


def _landed(s: Board, e: MergeLanded) -> None:
    s.merge_landed += 1
    s.landings.append(e.ts)
    s.waits.append(e.seconds_to_land)
    s._changed = e.ts
    row = s.tasks.get(e.task_id or "")
    if row is not None:
        row.landed_at, row.seconds_to_land, row.commit = e.ts, e.seconds_to_land, e.commit


def _merge_failed(s: Board, e: MergeFailed) -> None:
    s.merge_failed += 1
    s.conflicts += bool(e.conflicts)
    s._changed = e.ts


def _gate(s: Board, e: GateResult) -> None:
    s.gate = e
    s.gate_refused += not e.ok


def _claim(s: Board, e: ClaimChecked) -> None:
    count = s.claims.setdefault(f"{e.role}/{e.model}", [0, 0])
    count[0] += 1
    if not e.verified:
        count[1] += 1
        s.unverified.append(e)


def _check(s: Board, e: CheckFinished) -> None:
    if e.task_id is None:
        s.checks.append(e)


_HANDLERS: dict[type[Event], Callable[[Board, Any], None]] = {
    RunStarted: _run_started, RunFinished: _run_finished, PlannerRequested: _planner_requested,
    PlannerAnswered: _planner_answered, TaskCreated: _task_created, TaskStatusChanged: _task_status,
    WorkerStep: _worker_step, WorkerOutput: _output, LLMUsage: _usage, HandoffReceived: _handoff, MergeLanded: _landed,
    MergeFailed: _merge_failed, GateResult: _gate, CheckFinished: _check,
    MergeBatch: lambda s, e: setattr(s, "batch", e), MergeHealth: lambda s, e: setattr(s, "health", e),
    GateChecked: lambda s, e: setattr(s, "checked_by", e),
    Metrics: lambda s, e: setattr(s, "metrics", e), SweepFinished: lambda s, e: setattr(s, "sweep", e),
    FinalizationAttempt: lambda s, e: setattr(s, "finalization", e.attempt),
    RunInterrupted: lambda s, e: setattr(s, "interrupted", True),
    ResultReady: lambda s, e: setattr(s, "result", e), PlanPreview: lambda s, e: setattr(s, "plan", e),
    FeatureStatus: lambda s, e: s.features.__setitem__(e.feature, e), ClaimChecked: _claim,
    ConflictPredicted: lambda s, e: setattr(s, "predicted", s.predicted + 1),
    ConflictOutcome: lambda s, e: setattr(s, "avoided", s.avoided + e.avoided),
    FileHot: lambda s, e: s.hot_files.__setitem__(e.path, e.reason),
}
_DESCRIBED = {cls.model_fields["type"].default for cls in EVENT_TYPES}
"""Known event types without a handler still count: they show in the feed."""
