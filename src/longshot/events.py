"""Typed, frozen events: the only channel from the pipeline to logs, dashboard and stdout.

Every stage receives an ``Emit`` callable and reports through it. The `Bus` (`longshot.bus`)
fans each event out to its sinks (the NDJSON run log, ``--json`` stdout, the plain printer).
Consumers read the ``type`` tag, never message text. The catalogue is ``docs/events.md``;
a test keeps it in step with `AnyEvent`. Event classes live here and in
`longshot.merge_events`, `longshot.feature_events` and `longshot.conflict_events`; every name is importable from this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError

# Re-exported (``X as X``): every event name is importable from this module.
from longshot.bus import Bus as Bus
from longshot.bus import Emit as Emit
from longshot.bus import Event as Event
from longshot.bus import MemorySink as MemorySink
from longshot.bus import NdjsonSink as NdjsonSink
from longshot.bus import Sink as Sink
from longshot.bus import new_run_id as new_run_id
from longshot.conflict_events import ConflictOutcome as ConflictOutcome
from longshot.conflict_events import ConflictPredicted as ConflictPredicted
from longshot.conflict_events import FileHot as FileHot
from longshot.conflict_events import TipMerged as TipMerged
from longshot.conflict_events import WorkerWarned as WorkerWarned
from longshot.feature_events import ClaimChecked as ClaimChecked
from longshot.feature_events import FeatureStatus as FeatureStatus
from longshot.llm_events import BudgetSpent as BudgetSpent
from longshot.llm_events import EndpointHealth as EndpointHealth
from longshot.llm_events import LLMRetry as LLMRetry
from longshot.llm_events import LLMUsage as LLMUsage
from longshot.llm_events import ModelsWaiting as ModelsWaiting
from longshot.merge_events import CheckFinished as CheckFinished
from longshot.merge_events import ChecksPlanned as ChecksPlanned
from longshot.merge_events import GateChecked as GateChecked
from longshot.merge_events import GateResult as GateResult
from longshot.merge_events import MergeBatch as MergeBatch
from longshot.merge_events import MergeFailed as MergeFailed
from longshot.merge_events import MergeHealth as MergeHealth
from longshot.merge_events import MergeLanded as MergeLanded
from longshot.merge_events import NewSkippedTests as NewSkippedTests
from longshot.merge_events import SweepFinished as SweepFinished
from longshot.merge_events import SweepStarted as SweepStarted
from longshot.types import Handoff


class RunStarted(Event):
    type: Literal["run.started"] = "run.started"
    request: str
    repo: str
    target_branch: str
    max_workers: int
    log_path: str = ""
    max_tokens: int | None = None
    """RUN_MAX_TOKENS, when set: the budget the dashboard and report measure against."""
    max_cost_usd: float | None = None
    """RUN_MAX_COST_USD, when set."""
    unpriced_models: list[str] = Field(default_factory=list)
    """Models without a known price: their cost is unknown, not $0."""


class RunFinished(Event):
    type: Literal["run.finished"] = "run.finished"
    exit_code: int
    green: bool
    landed: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    unlanded: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    summary: str = ""


class PlannerRequested(Event):
    type: Literal["planner.requested"] = "planner.requested"
    iteration: int
    handoffs: int = 0


class PlannerAnswered(Event):
    type: Literal["planner.answered"] = "planner.answered"
    iteration: int
    tasks: int
    scratchpad: str = ""


class PlannerParseError(Event):
    type: Literal["planner.parse_error"] = "planner.parse_error"
    iteration: int
    error: str


class TaskCreated(Event):
    """A task joined the plan; a resumed run re-announces its tasks with their current ``status``."""

    type: Literal["task.created"] = "task.created"
    description: str
    branch: str
    scope: list[str] = Field(default_factory=list)
    priority: int = 5
    depends_on: list[str] = Field(default_factory=list)
    parent: str | None = None
    """The task a subplanner split into this one (None for the planner's and reconciler's tasks)."""
    kind: str = "task"
    """``task``, ``conflict-fix``, ``fix`` (a reconciler fix) or ``verify``, as in `Task.kind`."""
    feature: str | None = None
    """The feature the task serves (`Task.feature`)."""
    status: str = "pending"
    """Not pending only when a resumed run re-announces a task it recorded."""
    acceptance: str = ""
    """How the task is judged done (the planner's words), for the web view's task page."""


class TaskRejected(Event):
    type: Literal["task.rejected"] = "task.rejected"
    reason: str
    description: str = ""


class TaskStatusChanged(Event):
    type: Literal["task.status"] = "task.status"
    before: str
    after: str
    reason: str = ""


class WorkerStep(Event):
    type: Literal["worker.step"] = "worker.step"
    step: int
    tool: str
    ok: bool
    detail: str = ""


class WorkerOutput(Event):
    """A worker's command is still running and printing (at most one event per few seconds)."""

    type: Literal["worker.output"] = "worker.output"
    bytes: int
    """Output so far, stdout and stderr together."""


class HandoffReceived(Event):
    type: Literal["handoff.received"] = "handoff.received"
    handoff: Handoff


class SandboxProfile(Event):
    """What isolation and limits the sandboxes of this run have; ``weakened`` if any is missing."""

    type: Literal["sandbox.profile"] = "sandbox.profile"
    provider: str
    isolation: str
    description: str
    weakened: bool = False


WarningCode = Literal[
    "branch.set_aside", "checks.none", "checks.preexisting", "claim.unchecked",
    "context.compacted",
    "features.unjudged", "features.unreadable", "gate.no_checks", "hub.repaired", "isolation.none",
    "leftover.cleaned", "leftover.salvaged", "leftover.scan_failed", "leftover.unsalvaged", "lock.stale",
    "model.retry", "planner.max_iterations", "price.unknown", "reconciler.model_failed", "reset.note",
    "result.delivery", "salvage.failed", "sandbox.retry", "snapshot.refused", "state.diverged",
    "state.unpublished", "state.unreadable", "subplanner.failed", "task.base_missing", "worker.failed",
    "sandbox.adapted", "conflicts.unchecked", "preflight", "target.note", "resources.fitted",
    "branch.replaced",
    "other",
]
"""What a warning is about; consumers branch on this, never on the message. Listed in docs/events.md."""


class RunWarning(Event):
    """Something the user should know that does not stop the run."""

    type: Literal["warning"] = "warning"
    message: str
    code: WarningCode = "other"
    """The kind of warning; every warning the run emits names one (a test checks). ``other`` is
    what logs written before codes existed read as."""


class ConfigTracked(Event):
    """The target repository tracks files Longshot reads as its own configuration (``.env``,
    ``.longshot/``, a file a setting names): a clone of it configures the runs started there.
    Workers may never change them (`longshot.ownfiles`)."""

    type: Literal["config.tracked"] = "config.tracked"
    paths: list[str]
    message: str


class RunError(Event):
    """A failure of the run itself (not of one task)."""

    type: Literal["error"] = "error"
    message: str


class Metrics(Event):
    """The monitor's figures, every HEALTH_CHECK_INTERVAL seconds."""

    type: Literal["run.metrics"] = "run.metrics"
    workers_active: int
    workers_total: int
    pending: int
    done: int
    failed: int
    landed: int
    landed_per_hour: float = 0.0
    tasks_per_hour: float = 0.0
    merge_success_rate: float = 1.0
    queue_depth: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class WorkerStuck(Event):
    """A worker showed no progress for ``silent_s`` seconds; it is ended and its work salvaged."""

    type: Literal["worker.stuck"] = "worker.stuck"
    silent_s: float


class FinalizationAttempt(Event):
    """Finalization round ``attempt`` of ``max_attempts`` started (drain, re-land, sweep, fix)."""

    type: Literal["finalize.attempt"] = "finalize.attempt"
    attempt: int
    max_attempts: int


class StateSaved(Event):
    """The run's durable state was written to ``ref`` as ``commit`` (DESIGN §3.5)."""

    type: Literal["state.saved"] = "state.saved"
    ref: str
    commit: str
    reason: str = ""
    seconds: float = 0.0
    """Wall time of this write: capturing the state, the commit, the ref update and the push."""
    bytes: int = 0
    """Size of the JSON document written."""


class RunResumed(Event):
    """A run picked up from the durable state in the repository."""

    type: Literal["run.resumed"] = "run.resumed"
    landed: list[str] = Field(default_factory=list)
    adopted: list[str] = Field(default_factory=list)
    redispatched: list[str] = Field(default_factory=list)
    set_aside: list[str] = Field(default_factory=list)


class RunInterrupted(Event):
    """SIGINT/SIGTERM: dispatching stopped; ``immediate`` when a second signal cut the grace short."""

    type: Literal["run.interrupted"] = "run.interrupted"
    signal: str
    immediate: bool = False


class PreflightChecked(Event):
    """The preflight before planning (`longshot.preflight`): each check as ``{area, status
    (ok/warn/fail), detail, setting, fix}``; ``tokens`` the endpoint probes used."""

    type: Literal["preflight.checked"] = "preflight.checked"
    checks: list[dict[str, str]] = Field(default_factory=list)
    tokens: int = 0


class ResultReady(Event):
    """Where the run's result is, at the end: ``ref`` in ``repo``; ``moved``: whether the
    user's branch (``branch``) now points at it; ``command``: the one command that takes it
    (empty when there is nothing to take)."""

    type: Literal["result.ready"] = "result.ready"
    repo: str
    branch: str
    ref: str
    commit: str
    moved: bool
    command: str = ""
    note: str = ""


class PlanPreview(Event):
    """``--plan-only``: the recorded plan (tasks as ``{id, description, scope, depends_on}``)
    and an estimate of what running it costs (``None``: unknown, no price)."""

    type: Literal["plan.preview"] = "plan.preview"
    tasks: list[dict[str, object]] = Field(default_factory=list)
    tokens_low: int = 0
    tokens_high: int = 0
    cost_low_usd: float | None = None
    cost_high_usd: float | None = None
    basis: str = ""


AnyEvent = Annotated[
    Union[
        RunStarted, RunFinished, PlannerRequested, PlannerAnswered, PlannerParseError,
        TaskCreated, TaskRejected, TaskStatusChanged, WorkerStep, WorkerOutput, LLMUsage, LLMRetry, EndpointHealth,
        ModelsWaiting,        BudgetSpent, HandoffReceived,
        MergeLanded, GateResult, MergeBatch, MergeHealth, MergeFailed, CheckFinished, SandboxProfile, RunWarning, ConfigTracked, RunError,
        ChecksPlanned, Metrics, WorkerStuck, SweepStarted, SweepFinished, FinalizationAttempt, StateSaved, RunResumed,
        RunInterrupted, FeatureStatus, ClaimChecked, FileHot, ConflictPredicted, WorkerWarned, TipMerged,
        ConflictOutcome, PreflightChecked, ResultReady, PlanPreview, GateChecked, NewSkippedTests,
    ],
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
EVENT_TYPES: tuple[type[Event], ...] = tuple(
    a for a in AnyEvent.__origin__.__args__  # type: ignore[attr-defined]
)

def parse_event(line: str) -> Event | None:
    """One NDJSON line as a typed event; None for an unknown type (newer writer)."""
    data = json.loads(line)
    try:
        return EVENT_ADAPTER.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError:
        if data.get("type") not in {cls.model_fields["type"].default for cls in EVENT_TYPES}:
            return None
        raise


def read_events(path: Path) -> Iterator[Event]:
    """The events of a run log, skipping unknown types and a torn last line."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = parse_event(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
            if event is not None:
                yield event
