"""Typed, frozen events: the only channel from the pipeline to logs, dashboard and stdout.

Every stage receives an ``Emit`` callable and reports through it. The `Bus` fans each
event out to its sinks (the NDJSON run log, ``--json`` stdout, the plain printer).
Consumers read the ``type`` tag, never message text. The catalogue is ``docs/events.md``;
a test keeps it in step with the classes below.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from longshot.types import Handoff


class Event(BaseModel):
    """Base of every event: a ``type`` tag, a wall-clock time, the run and maybe a task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    ts: float = Field(default_factory=time.time)
    run_id: str = ""
    task_id: str | None = None


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
    """``task``, ``conflict-fix`` or ``fix`` (a reconciler fix), as in `Task.kind`."""
    status: str = "pending"
    """Not pending only when a resumed run re-announces a task it recorded."""


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


class LLMUsage(Event):
    type: Literal["llm.usage"] = "llm.usage"
    role: str
    model: str
    endpoint: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0


class LLMRetry(Event):
    """A model request failed and will be tried again (maybe elsewhere)."""

    type: Literal["llm.retry"] = "llm.retry"
    role: str
    endpoint: str
    attempt: int
    error: str
    delay_s: float = 0.0
    """How long the retry waits first (0 when it fails over to another endpoint at once)."""


class EndpointHealth(Event):
    """An endpoint was taken out of rotation (rest) or came back."""

    type: Literal["llm.endpoint"] = "llm.endpoint"
    endpoint: str
    healthy: bool
    reason: str = ""


class BudgetSpent(Event):
    """A budget ran out; ``budget`` names its setting."""

    type: Literal["budget.spent"] = "budget.spent"
    budget: str
    message: str


class HandoffReceived(Event):
    type: Literal["handoff.received"] = "handoff.received"
    handoff: Handoff


class MergeLanded(Event):
    type: Literal["merge.landed"] = "merge.landed"
    commit: str
    branch: str
    queue_depth: int = 0
    seconds_to_land: float = 0.0
    """From the handoff to the target branch moving."""


class GateResult(Event):
    """The merge gate's verdict on a candidate (the exact tree that would land)."""

    type: Literal["merge.gate"] = "merge.gate"
    commit: str
    ok: bool
    reason: str = ""
    flaky: list[str] = Field(default_factory=list)
    preexisting: list[str] = Field(default_factory=list)
    checked_by: str = ""
    """When ok: ``tests`` (tests ran), ``collection`` (the test runner ran but no test did),
    ``commands`` (no per-test report: exit codes only)."""
    revealed: list[str] = Field(default_factory=list)
    """Failing tests the base could not even collect: not blamed on the change."""


class GateChecked(Event):
    """Landings vouched for so far in the run: by tests that ran, only by collection, or only by
    commands' exit codes (no test runner reported)."""

    type: Literal["merge.checked_by"] = "merge.checked_by"
    by_tests: int = 0
    by_collection: int = 0
    by_commands: int = 0


class NewSkippedTests(Event):
    """A landing adds new tests that carry a skip (allowed; skipping tests of the base is not)."""

    type: Literal["merge.new_skips"] = "merge.new_skips"
    tests: list[str] = Field(default_factory=list)


class MergeBatch(Event):
    """A batch of stacked changes was checked as one; ``depth`` counts bisection steps."""

    type: Literal["merge.batch"] = "merge.batch"
    size: int
    ok: bool
    depth: int = 0
    tasks: list[str] = Field(default_factory=list)


class MergeHealth(Event):
    """The merge queue's figures so far, after each landing or refusal."""

    type: Literal["merge.health"] = "merge.health"
    queue_depth: int
    landed: int
    failed: int
    conflicts: int
    flakes: int
    p50_seconds_to_land: float = 0.0
    p95_seconds_to_land: float = 0.0
    mean_batch: float = 0.0
    max_bisection_depth: int = 0
    landed_per_hour: float = 0.0


class MergeFailed(Event):
    type: Literal["merge.failed"] = "merge.failed"
    branch: str
    reason: str
    conflicts: list[str] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list)


class CheckFinished(Event):
    type: Literal["check.finished"] = "check.finished"
    command: str
    exit_code: int
    ok: bool
    output_tail: str = ""


class SandboxProfile(Event):
    """What isolation and limits the sandboxes of this run have; ``weakened`` if any is missing."""

    type: Literal["sandbox.profile"] = "sandbox.profile"
    provider: str
    isolation: str
    description: str
    weakened: bool = False


class RunWarning(Event):
    """Something the user should know that does not stop the run."""

    type: Literal["warning"] = "warning"
    message: str


class RunError(Event):
    """A failure of the run itself (not of one task)."""

    type: Literal["error"] = "error"
    message: str


class ChecksPlanned(Event):
    """The checks that judge the target: ``source`` is configured, detected or none."""

    type: Literal["checks.plan"] = "checks.plan"
    source: Literal["configured", "detected", "none"]
    commands: list[str] = Field(default_factory=list)
    ecosystems: list[str] = Field(default_factory=list)
    setup: bool = False


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


class SweepStarted(Event):
    """The reconciler started checking the target branch at ``commit``."""

    type: Literal["reconciler.sweep"] = "reconciler.sweep"
    sweep: int
    commit: str


class SweepFinished(Event):
    """A sweep's outcome: ``failures`` are failure signatures; ``discarded`` when the branch moved."""

    type: Literal["reconciler.result"] = "reconciler.result"
    sweep: int
    commit: str
    green: bool
    failures: list[str] = Field(default_factory=list)
    fixes: list[str] = Field(default_factory=list)
    discarded: bool = False
    preexisting: list[str] = Field(default_factory=list)


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


AnyEvent = Annotated[
    Union[
        RunStarted, RunFinished, PlannerRequested, PlannerAnswered, PlannerParseError,
        TaskCreated, TaskRejected, TaskStatusChanged, WorkerStep, WorkerOutput, LLMUsage, LLMRetry, EndpointHealth,
        BudgetSpent, HandoffReceived,
        MergeLanded, GateResult, GateChecked, NewSkippedTests, MergeBatch, MergeHealth, MergeFailed, CheckFinished, SandboxProfile, RunWarning, RunError,
        ChecksPlanned, Metrics, WorkerStuck, SweepStarted, SweepFinished, FinalizationAttempt, StateSaved, RunResumed,
        RunInterrupted,
    ],
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
EVENT_TYPES: tuple[type[Event], ...] = tuple(
    a for a in AnyEvent.__origin__.__args__  # type: ignore[attr-defined]
)

def new_run_id() -> str:
    """A unique, sortable run id: UTC time plus randomness."""
    return time.strftime("run-%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


Emit = Callable[[Event], None]
"""What every stage is given to report with."""


class Sink(Protocol):
    """Receives every event, in order. Must not raise for a well-formed event."""

    def __call__(self, event: Event) -> None: ...


class Bus:
    """Stamps each event with the run id and hands it to every sink in order."""

    def __init__(self, run_id: str, sinks: list[Sink] | None = None) -> None:
        self.run_id = run_id
        self._sinks: list[Sink] = list(sinks or [])

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, event: Event) -> None:
        if not event.run_id:
            event = event.model_copy(update={"run_id": self.run_id})
        for sink in self._sinks:
            sink(event)


class NdjsonSink:
    """Writes one JSON object per line and flushes, so a crash loses at most one line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    @classmethod
    def open(cls, path: Path) -> "NdjsonSink":
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("a", encoding="utf-8"))

    def __call__(self, event: Event) -> None:
        self._stream.write(event.model_dump_json() + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


class MemorySink:
    """Keeps events in a list (for the end-of-run summary and for tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, cls: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


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
