"""What the web pages show beyond the dashboard's `Board`: a pure reducer over the same events.

`RunView` folds every event into the dashboard's `Board` (reused as is) and keeps what
a page needs that the terminal does not: each task's sprint, scope, acceptance, branch
and status history, its handoff, gate verdicts, merge refusals and check output; the
conflicts and refusals of the run; cost and landings over time. Feature statuses are the
dashboard's (`Board.features`).
It does no I/O and never reads a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from longshot.dashboard.board import Board
from longshot.events import (
    CheckFinished, ClaimChecked, Event, GateResult, HandoffReceived, LLMUsage, MergeFailed, MergeLanded, PlannerAnswered,
    PlannerRequested, TaskCreated, TaskStatusChanged, WorkerStep,
)
from longshot.types import Handoff

STEPS_KEPT = 300
"""Latest tool calls kept per task (the full conversation is in the request log)."""
ALERTS_KEPT = 500
SERIES_KEPT = 2000


@dataclass
class TaskExtra:
    """What the task page shows beyond the dashboard's row."""

    sprint: int = 0
    branch: str = ""
    scope: list[str] = field(default_factory=list)
    acceptance: str = ""
    priority: int = 5
    history: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(time, before, after, reason) of every status change."""
    handoffs: list[Handoff] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    refusals: list[MergeFailed] = field(default_factory=list)
    checks: list[CheckFinished] = field(default_factory=list)
    steps: deque[WorkerStep] = field(default_factory=lambda: deque(maxlen=STEPS_KEPT))
    landed: MergeLanded | None = None
    feature: str | None = None
    claims: list[ClaimChecked] = field(default_factory=list)
    """Its ``complete`` checked against its acceptance command (`claim.checked`)."""


@dataclass
class Alert:
    ts: float
    kind: str
    """``conflict``, ``refusal``, ``gate`` (a refusal), ``claim`` (unverified), ``warning`` or ``error``."""
    text: str
    task_id: str | None = None
    code: str = ""
    """A warning's code (`RunWarning.code`), when it names one."""


@dataclass
class RunView:
    """The dashboard's state plus what the web pages add; `apply` folds one event."""

    state: Board = field(default_factory=Board)
    tasks: dict[str, TaskExtra] = field(default_factory=dict)
    sprint: int = 0
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=ALERTS_KEPT))
    cost_series: list[tuple[float, float]] = field(default_factory=list)
    """(time, run cost so far in USD), thinned to at most one point a second."""
    first_ts: float | None = None
    events: int = 0

    def apply(self, event: Event) -> None:
        self.state.apply(event)
        self.events += 1
        if self.first_ts is None:
            self.first_ts = event.ts
        extra = self.tasks.get(event.task_id or "")
        match event:
            case PlannerRequested() | PlannerAnswered():
                self.sprint = max(self.sprint, event.iteration)
            case TaskCreated() if event.task_id and event.task_id not in self.tasks:
                self.tasks[event.task_id] = TaskExtra(sprint=self.sprint, branch=event.branch, scope=list(event.scope),
                                                      acceptance=event.acceptance, priority=event.priority,
                                                      feature=event.feature)
            case TaskStatusChanged() if extra is not None:
                extra.history.append((event.ts, event.before, event.after, event.reason))
            case WorkerStep() if extra is not None:
                extra.steps.append(event)
            case HandoffReceived() if extra is not None:
                extra.handoffs.append(event.handoff)
            case GateResult():
                if extra is not None:
                    extra.gates.append(event)
                if not event.ok:
                    self.alerts.append(Alert(event.ts, "gate", event.reason or "the gate refused", event.task_id))
            case MergeFailed():
                if extra is not None:
                    extra.refusals.append(event)
                kind = "conflict" if event.conflicts else "refusal"
                files = f" ({', '.join(event.conflicts[:5])})" if event.conflicts else ""
                self.alerts.append(Alert(event.ts, kind, event.reason + files, event.task_id))
            case CheckFinished() if extra is not None:
                extra.checks.append(event)
            case MergeLanded() if extra is not None:
                extra.landed = event
            case LLMUsage():
                self._cost(event.ts)
            case ClaimChecked():
                if extra is not None:
                    extra.claims.append(event)
                if not event.verified:
                    self.alerts.append(Alert(event.ts, "claim", f"said complete, but `{event.command}` exits "
                                                                 f"{event.exit_code}", event.task_id))
        if event.type in ("warning", "error", "budget.spent", "worker.stuck"):
            text = getattr(event, "message", "") or f"no progress for {getattr(event, 'silent_s', 0):.0f}s"
            code = str(getattr(event, "code", "") or "")
            self.alerts.append(Alert(event.ts, "error" if event.type != "warning" else "warning", text,
                                     event.task_id, "" if code == "other" else code))

    def _cost(self, ts: float) -> None:
        point = (ts, self.state.cost_usd)
        if self.cost_series and ts - self.cost_series[-1][0] < 1.0:
            self.cost_series[-1] = point
        else:
            self.cost_series.append(point)
            if len(self.cost_series) > SERIES_KEPT:
                del self.cost_series[::2]
