"""One readable line per meaningful event, and how much it matters.

Shared by the plain printer (``--no-dashboard``) and the dashboard's activity feed, so
both say the same thing. Lines are rich markup built from event fields only.
"""

from __future__ import annotations

from rich.markup import escape

from longshot.events import (
    BudgetSpent, CheckFinished, ClaimChecked, EndpointHealth, Event, FeatureStatus, FinalizationAttempt,
    HandoffReceived, LLMRetry, MergeFailed, MergeLanded, ModelsWaiting, PlannerAnswered, PlannerParseError,
    PlannerRequested, RunError, RunFinished, RunInterrupted,
    RunStarted, RunWarning, SandboxProfile, SweepFinished, TaskCreated, TaskRejected, TaskStatusChanged, WorkerStuck,
)

ERRORS = (RunError, MergeFailed, BudgetSpent)
WARNINGS = (RunWarning, TaskRejected, PlannerParseError, WorkerStuck, RunInterrupted)


def level(e: Event) -> str:
    """``error``, ``warning`` or ``info``."""
    match e:
        case _ if isinstance(e, ERRORS):
            return "error"
        case TaskStatusChanged() if e.after in ("failed", "blocked"):
            return "error"
        case CheckFinished() if not e.ok:
            return "error"
        case FeatureStatus() if e.status == "failing" and e.before != "failing":
            return "error"
        case ClaimChecked() if not e.verified:
            return "warning"
        case RunFinished() if e.exit_code != 0:
            return "error"
        case _ if isinstance(e, WARNINGS):
            return "warning"
        case TaskCreated() if e.kind != "task":
            return "warning"
        case SweepFinished() if not e.green and not e.discarded:
            return "warning"
        case EndpointHealth() if not e.healthy:
            return "warning"
        case ModelsWaiting():
            return "warning"
        case TaskStatusChanged() if e.after == "partial":
            return "warning"
    return "info"


def describe(e: Event) -> str | None:
    """One readable line (rich markup) for a meaningful event; None for the others."""
    t = f"[cyan]{escape(e.task_id)}[/] " if e.task_id else ""
    match e:
        case RunStarted():
            return f"[bold]longshot[/] {escape(e.request[:120])}\n  repo {escape(e.repo)} → {e.target_branch}, " \
                   f"{e.max_workers} workers, log {escape(e.log_path)}"
        case PlannerRequested():
            return f"[magenta]planner[/] thinking (iteration {e.iteration}, {e.handoffs} new handoffs)"
        case PlannerAnswered():
            return f"[magenta]planner[/] {e.tasks} new tasks"
        case PlannerParseError():
            return f"[yellow]planner answer unusable[/]: {escape(e.error[:200])}"
        case TaskCreated() if e.kind == "conflict-fix":
            return f"{t}[yellow]planned to resolve a merge conflict[/]: {escape(e.description.splitlines()[0][:100])}"
        case TaskCreated() if e.kind == "fix":
            return f"{t}[yellow]fix task[/]: {escape(e.description.splitlines()[0][:100])}"
        case TaskCreated():
            return f"{t}planned: {escape(e.description[:100])}"
        case TaskRejected():
            return f"[yellow]rejected task[/] {t}{escape(e.reason)}"
        case TaskStatusChanged() if e.after in ("merging", "landed") or e.before == "merging":
            return None  # the merge events say it better
        case TaskStatusChanged():
            colour = {"landed": "green", "failed": "red", "blocked": "red", "partial": "yellow"}.get(e.after, "blue")
            why = f" ({escape(e.reason[:160])})" if e.reason and e.after != "merging" else ""
            return f"{t}[{colour}]{e.after}[/]{why}"
        case HandoffReceived():
            m = e.handoff.metrics
            return f"{t}handoff {e.handoff.status}: +{m.lines_added}/-{m.lines_removed} in " \
                   f"{len(e.handoff.files_changed)} files, {m.tool_calls} tool calls, {m.tokens_used} tokens"
        case MergeLanded():
            return f"{t}[green]landed[/] as {e.commit[:10]}"
        case MergeFailed():
            return f"{t}[red]merge failed[/]: {escape(e.reason)}"
        case CheckFinished():
            mark = "[green]✓[/]" if e.ok else "[red]✗[/]"
            tail = "" if e.ok else "\n" + escape(e.output_tail[-1500:])
            return f"check {mark} {escape(e.command)} (exit {e.exit_code}){tail}"
        case SandboxProfile():
            colour = "yellow" if e.weakened else "dim"
            return f"[{colour}]sandbox ({e.provider}): {escape(e.description)}[/]"
        case RunWarning():
            return f"{t}[yellow]warning[/]: {escape(e.message)}"
        case RunError():
            return f"{t}[red]error[/]: {escape(e.message)}"
        case SweepFinished() if not e.green and not e.discarded:
            fixes = f"; fix tasks {', '.join(e.fixes)}" if e.fixes else ""
            return f"[yellow]sweep {e.sweep}: target branch red[/] ({escape(', '.join(e.failures[:5]))}){fixes}"
        case SweepFinished() if e.green:
            return f"[green]sweep {e.sweep}: target branch green[/]"
        case WorkerStuck():
            return f"{t}[yellow]no progress for {e.silent_s:.0f}s[/]: ended, its work salvaged"
        case LLMRetry():
            return f"{t}[dim]model request retried ({e.role} on {escape(e.endpoint)}, attempt {e.attempt}): " \
                   f"{escape(e.error[:120])}[/]"
        case EndpointHealth():
            state = "[green]back in rotation[/]" if e.healthy else "[yellow]resting[/]"
            return f"endpoint {escape(e.endpoint)} {state}" + (f": {escape(e.reason)}" if e.reason else "")
        case ModelsWaiting():
            return f"[yellow]every model endpoint is resting[/]: requests wait about {e.wait_s:.0f}s for the first " \
                   f"to come back ({e.endpoints} endpoints)"
        case BudgetSpent():
            return f"[red]{e.budget} spent[/]: {escape(e.message)}"
        case FeatureStatus() if e.before is not None and e.before != e.status:
            colour = {"verified": "green", "failing": "red", "claimed": "yellow"}.get(e.status, "dim")
            name = f" ({escape(e.name[:60])})" if e.name else ""
            return f"feature [bold]{escape(e.feature)}[/]{name} [{colour}]{e.status}[/]: {escape(e.evidence[:160])}"
        case ClaimChecked() if not e.verified:
            return f"{t}[yellow]unverified claim[/]: it said complete, but `{escape(e.command[:100])}` exits " \
                   f"{e.exit_code} on its branch"
        case FinalizationAttempt():
            return f"[magenta]finalization[/] round {e.attempt} of {e.max_attempts}"
        case RunInterrupted():
            return f"[yellow]interrupted ({e.signal})[/]" + (", stopping now" if e.immediate else ", finishing up")
        case RunFinished():
            mark = "[green]✓ done[/]" if e.exit_code == 0 else f"[red]✗ exit {e.exit_code}[/]"
            return f"{mark} in {e.duration_s:.1f}s"
    return None
