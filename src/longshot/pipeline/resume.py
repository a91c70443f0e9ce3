"""Turning a run into `RunState` and back: what a resumed run rebuilds, and from what.

`capture` writes down what git cannot tell. `recover` rebuilds the run from that record
*and* from git, git winning where they disagree:

- a task whose ``Longshot-Task`` trailer is on the target branch (since the run started)
  has landed, whatever the record says; one that a landed continuation carried on is
  superseded. So no task lands twice;
- a task that was running or merging: if its branch holds a result of its current attempt
  (the ``Longshot-Status`` and ``Longshot-Attempt`` trailers), that result is adopted as if
  the worker had just handed off, and the model is not asked again; if the record has its
  completed commit, it goes back into the merge queue; otherwise it is dispatched again,
  from its branch, so work salvaged from the dead run is carried on;
- worker branches the record does not know are set aside (reported; their names reserved;
  never deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longshot.budget import RunBudget
from longshot.events import Emit, RunWarning
from longshot.git import trailers
from longshot.hub import Hub
from longshot.pipeline.handoff import ATTEMPT, CONTINUES, TRAILER, build_handoff, commit_result
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.plan import Planner
from longshot.pipeline.reconcile import Reconciler
from longshot.pipeline.schedule import Scheduler
from longshot.pipeline.state import LedgerState, PlannerState, ReconcilerState, RunState, SpentState
from longshot.types import ENDED, TERMINAL, Handoff, Task, TaskStatus


@dataclass
class Recovered:
    """What `recover` found; the orchestrator acts on ``results`` and ``requeue``."""

    landed: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    redispatched: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    results: list[tuple[Task, Handoff]] = field(default_factory=list)
    """Results of the current attempt found on branches: record them as fresh handoffs."""
    requeue: list[tuple[Task, str]] = field(default_factory=list)
    """Completed work that was in the merge queue: submit it again."""


def capture(state: RunState, scheduler: Scheduler, ledger: Ledger, planner: Planner, reconciler: Reconciler | None,
            budget: RunBudget, validator: TaskValidator, flags: PlannerState) -> RunState:
    """``state`` (its fixed fields: id, request, start) brought up to date from the live run."""
    flags = flags.model_copy(update={"notes": list(planner.notes), "last_tip": planner.last_tip})
    ledger_state = LedgerState(
        unlanded=dict(ledger.unlanded), conflict_fixes=ledger.conflict_fixes, reports=dict(ledger.reports),
        unsent=list(ledger.unsent), child_reports={k: list(v) for k, v in ledger.child_reports.items()},
        notes=list(ledger.notes), parents_to_review=list(ledger.parents_to_review))
    rec = ReconcilerState()
    if reconciler is not None:
        rec = ReconcilerState(
            sweeps=reconciler.sweeps, claims=dict(reconciler.claims), attempts=dict(reconciler.attempts),
            preexisting=None if reconciler.preexisting is None else sorted(reconciler.preexisting),
            reported=sorted(reconciler.reported), fix_counter=reconciler.fix_counter, notes=list(reconciler.notes))
    spent = SpentState(tokens=budget.tokens, cost_usd=budget.cost_usd, by_task=dict(budget.by_task),
                       cost_by_task=dict(budget.cost_by_task))
    return state.model_copy(update={
        "tasks": [t.model_copy() for t in scheduler.tasks.values()], "handoffs": dict(ledger.handoffs),
        "planner": flags, "ledger": ledger_state, "reconciler": rec, "spent": spent,
        "known_ids": sorted(validator.known_ids), "known_branches": sorted(validator.known_branches),
        "id_counter": validator.counter})


def restore_reconciler(reconciler: Reconciler, saved: ReconcilerState) -> None:
    reconciler.sweeps = saved.sweeps
    reconciler.claims.update(saved.claims)
    reconciler.attempts.update(saved.attempts)
    reconciler.preexisting = None if saved.preexisting is None else set(saved.preexisting)
    reconciler.reported.update(saved.reported)
    reconciler.fix_counter = saved.fix_counter
    reconciler.notes[:0] = saved.notes


async def recover(state: RunState, hub: Hub, scheduler: Scheduler, ledger: Ledger, planner: Planner,
                  budget: RunBudget, validator: TaskValidator, emit: Emit) -> Recovered:
    """Rebuild the run recorded in ``state`` (see the module docstring)."""
    _restore_counters(state, ledger, planner, budget, validator)
    found = Recovered()
    git = hub.git
    since = f"{state.start_commit}..{await hub.tip()}"
    landed = {value for _, value in await trailers(git, since, TRAILER)}
    carried = {value for _, value in await trailers(git, since, CONTINUES)}
    for task in state.tasks:
        if task.id in landed:
            if task.status != TaskStatus.LANDED:
                task.status, task.reason = TaskStatus.LANDED, "its commit is on the target branch"
                found.landed.append(task.id)
            ledger.unlanded.pop(task.id, None)
        elif task.id in carried and task.status not in TERMINAL:
            task.status, task.reason = TaskStatus.SUPERSEDED, "carried on by a continuation that landed"
            ledger.unlanded.pop(task.id, None)
        elif task.status in (TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.PENDING):
            await _unfinished(task, state.handoffs.get(task.id), hub, found)
        scheduler.add(task)
    for task in scheduler.with_status(TaskStatus.DECOMPOSED):
        kids = scheduler.children(task.id)
        if kids and all(k.status in ENDED for k in kids) and task.id not in ledger.parents_to_review:
            ledger.parents_to_review.append(task.id)
    known = {t.branch for t in state.tasks}
    out = await git.run("for-each-ref", "--format=%(refname:short)", f"refs/heads/{hub.prefix}")
    for branch in out.splitlines():
        if branch not in known:
            validator.taken_branches.add(branch)
            found.set_aside.append(branch)
            emit(RunWarning(message=f"branch {branch} belongs to no task of the recorded run; it is set aside "
                                    "(kept as it is, its name reserved)"))
    return found


async def _unfinished(task: Task, handoff: Handoff | None, hub: Hub, found: Recovered) -> None:
    """A task the dead run was (or may have been: the record lags by one batch) working on:
    adopt its result, requeue it, or dispatch it again."""
    git = hub.git
    if task.status == TaskStatus.MERGING and handoff is not None and handoff.commit \
            and await git.rev_parse(handoff.commit):
        found.requeue.append((task, handoff.commit))
        found.adopted.append(task.id)
        return
    tip = await git.rev_parse(f"refs/heads/{task.branch}")
    if tip is not None and not await git.is_ancestor(tip, await hub.tip()):
        marks, result = await commit_result(git, tip)
        attempt = int(marks[ATTEMPT]) if marks.get(ATTEMPT, "").isdigit() else 0
        # A result of the attempt the record knows of, or of one it never saw start.
        newer = attempt > task.attempts or (attempt == task.attempts and task.status != TaskStatus.PENDING)
        if result is not None and marks.get(TRAILER) == task.id and attempt >= 1 and newer:
            base = await git.rev_parse(f"{tip}^") or tip
            task.status, task.attempts = TaskStatus.RUNNING, attempt
            found.results.append((task, await build_handoff(git, task, result, base, tip, 0)))
            found.adopted.append(task.id)
            return
    if task.status != TaskStatus.PENDING:
        task.status = TaskStatus.PENDING
        task.reason = "the last run stopped while it was running; dispatched again from its branch"
        found.redispatched.append(task.id)


def _restore_counters(state: RunState, ledger: Ledger, planner: Planner, budget: RunBudget,
                      validator: TaskValidator) -> None:
    validator.known_ids.update(state.known_ids)
    validator.known_branches.update(state.known_branches)
    validator.counter = state.id_counter
    saved = state.ledger
    ledger.handoffs.update(state.handoffs)
    ledger.unlanded.update(saved.unlanded)
    ledger.conflict_fixes = saved.conflict_fixes
    ledger.reports.update(saved.reports)
    ledger.unsent += saved.unsent
    ledger.child_reports.update({k: list(v) for k, v in saved.child_reports.items()})
    ledger.notes += saved.notes
    ledger.parents_to_review += saved.parents_to_review
    p = state.planner
    planner.iteration = p.iteration
    planner.notes += p.notes
    if p.iteration:  # else no answer was ever applied: the planner starts over, from the request
        planner.conversation.restore(p.scratchpad, p.summary)
    planner.last_tip = p.last_tip
    budget.tokens, budget.cost_usd = state.spent.tokens, state.spent.cost_usd
    budget.by_task.update(state.spent.by_task)
    budget.cost_by_task.update(state.spent.cost_by_task)
