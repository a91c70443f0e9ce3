"""One readable line per meaningful event, and how much it matters.

Shared by the plain printer (``--no-dashboard``) and the dashboard's activity feed, so
both say the same thing. Lines are rich markup built from event fields only.
"""

from __future__ import annotations

from rich.markup import escape

from longshot.clip import clip

from longshot.events import (
    BudgetSpent, CheckFinished, ClaimChecked, ConfigTracked, EndpointHealth, Event, FeatureStatus, FinalizationAttempt,
    HandoffReceived, LLMRetry, MergeFailed, MergeLanded, ModelsWaiting, PlannerAnswered, PlannerParseError,
    PlannerRequested, RunError, RunFinished, RunInterrupted,
    RunStarted, RunWarning, SandboxProfile, SweepFinished, TaskCreated, TaskRejected, TaskStatusChanged, WorkerStuck,
    PlanPreview, PreflightChecked, ResultReady, ConflictOutcome, ConflictPredicted, FileHot, TipMerged,
)

ERRORS = (RunError, MergeFailed, BudgetSpent)
WARNINGS = (RunWarning, ConfigTracked, TaskRejected, PlannerParseError, WorkerStuck, RunInterrupted)


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
            return f"[bold]longshot[/] {escape(clip(e.request, 120))}\n  repo {escape(e.repo)} → {e.target_branch}, " \
                   f"{e.max_workers} workers, log {escape(e.log_path)}"
        case PlannerRequested():
            return f"[magenta]planner[/] thinking (iteration {e.iteration}, {e.handoffs} new handoffs)"
        case PlannerAnswered():
            return f"[magenta]planner[/] {e.tasks} new tasks"
        case PlannerParseError():
            return f"[yellow]planner answer unusable[/]: {escape(clip(e.error, 200))}"
        case TaskCreated() if e.kind == "conflict-fix":
            return f"{t}[yellow]planned to resolve a merge conflict[/]: {escape(clip(e.description.splitlines()[0], 100))}"
        case TaskCreated() if e.kind == "fix":
            return f"{t}[yellow]fix task[/]: {escape(clip(e.description.splitlines()[0], 100))}"
        case TaskCreated():
            return f"{t}planned: {escape(clip(e.description, 100))}"
        case TaskRejected():
            return f"[yellow]rejected task[/] {t}{escape(e.reason)}"
        case TaskStatusChanged() if e.after in ("merging", "landed") or e.before == "merging":
            return None  # the merge events say it better
        case TaskStatusChanged():
            colour = {"landed": "green", "failed": "red", "blocked": "red", "partial": "yellow"}.get(e.after, "blue")
            why = f" ({escape(clip(e.reason, 160))})" if e.reason and e.after != "merging" else ""
            return f"{t}[{colour}]{e.after}[/]{why}"
        case HandoffReceived():
            m = e.handoff.metrics
            return f"{t}handoff {e.handoff.status}: +{m.lines_added}/-{m.lines_removed} in " \
                   f"{len(e.handoff.files_changed)} files, {m.tool_calls} tool calls, {m.tokens_used} tokens"
        case MergeLanded():
            return f"{t}[green]landed[/] as {e.commit[:10]}"
        case MergeFailed():
            return f"{t}[red]merge failed[/]: {escape(e.reason)}"
        case ConflictPredicted():
            where = "; ".join(f"{f} lines {e.lines.get(f, '?')}" for f in e.files)
            return f"{t}[yellow]conflict predicted[/] with {escape(f'{e.against}: ' + clip(where, 200))} (worker told)"
        case TipMerged():
            left = f", markers to resolve in {', '.join(e.conflicts)}" if e.conflicts else ""
            return t + escape(f"merged the tip {e.tip[:10]} into its checkout{left}")
        case ConflictOutcome():
            return f"{t}{'[green]conflict avoided[/]' if e.avoided else '[red]conflict not avoided[/]'} after a warning"
        case FileHot():
            return f"[yellow]hot file[/] {escape(e.path)}: {escape(e.reason)}; tasks naming it run one at a time"
        case CheckFinished():
            mark = "[green]✓[/]" if e.ok else "[red]✗[/]"
            tail = "" if e.ok else "\n" + escape(e.output_tail[-1500:])
            return f"check {mark} {escape(e.command)} (exit {e.exit_code}){tail}"
        case SandboxProfile():
            colour = "yellow" if e.weakened else "dim"
            return f"[{colour}]sandbox ({e.provider}): {escape(e.description)}[/]"
        case RunWarning() | ConfigTracked():
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
                   f"{escape(clip(e.error, 120))}[/]"
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
        case PreflightChecked():
            counts = {s: sum(c.get("status") == s for c in e.checks) for s in ("ok", "warn", "fail")}
            return f"[dim]preflight: {counts['ok']} checks ok, {counts['warn']} warnings, {counts['fail']} failed " \
                   f"({e.tokens} tokens)[/]"
        case PlanPreview():
            return plan_lines(e)
        case ResultReady():
            take = f"\n  take it: [bold]{escape(e.command)}[/]" if e.command else ""
            return f"[bold]result[/]: {escape(e.ref)} in {escape(e.repo)} ({e.commit[:10]}); " \
                   f"{e.branch + ' moved to it' if e.moved else e.branch + ' did not move'}" \
                   f"{': ' + escape(e.note) if e.note else ''}{take}"
    return None


def plan_lines(e: PlanPreview) -> str:
    """``--plan-only``: every task with its scope and dependencies, then the estimate."""
    out = [f"[bold]plan[/]: {len(e.tasks)} tasks"]
    for t in e.tasks:
        out.append(f"  [cyan]{escape(str(t['id']))}[/] {escape(str(t['description']).splitlines()[0] if t['description'] else '')}")
        scope, deps = t.get("scope") or [], t.get("depends_on") or []
        if scope:
            out.append(f"      scope: {escape(', '.join(map(str, scope)))}")  # type: ignore[call-overload]
        if deps:
            out.append(f"      after: {escape(', '.join(map(str, deps)))}")  # type: ignore[call-overload]
    cost = ("cost unknown (no price for the worker model)" if e.cost_low_usd is None
            else f"${e.cost_low_usd:.2f} to ${e.cost_high_usd or 0:.2f}")
    out.append(f"[bold]estimate[/]: {e.tokens_low:,} to {e.tokens_high:,} tokens, {cost}")
    out.append(f"  [dim]from {escape(e.basis)}[/]")
    return "\n".join(out)
