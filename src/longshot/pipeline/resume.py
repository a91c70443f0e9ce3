"""Turning a run into `RunState` and back: what a resumed run rebuilds, and from what.

Every part with durable state (scheduler, ledger, main loop and planner, reconciler, budget,
validator) saves and restores itself (`snapshot`/`restore`); this module only composes
them. `capture` writes down what git cannot tell. `recover` rebuilds the run from that
record *and* from git, git winning where they disagree:

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
from longshot.pipeline.drive import Driver
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.parse import NameState, TaskValidator
from longshot.pipeline.reconcile import Reconciler
from longshot.pipeline.schedule import Scheduler
from longshot.pipeline.state import RunState
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


def capture(state: RunState, scheduler: Scheduler, ledger: Ledger, driver: Driver, reconciler: Reconciler,
            budget: RunBudget, validator: TaskValidator) -> RunState:
    """``state`` (its fixed fields: id, request, start) brought up to date from each part's `snapshot`
    (the scheduler's live tasks: the state writer serializes the result at once, see `StateStore`)."""
    ledger_state, handoffs = ledger.snapshot()
    return state.model_copy(update={
        "tasks": scheduler.live(), "handoffs": handoffs, "planner": driver.snapshot(), "ledger": ledger_state,
        "reconciler": reconciler.snapshot(),
        "spent": budget.snapshot(), **validator.snapshot().model_dump()})


async def recover(state: RunState, hub: Hub, scheduler: Scheduler, ledger: Ledger, budget: RunBudget,
                  validator: TaskValidator, emit: Emit) -> Recovered:
    """Rebuild the run recorded in ``state`` (see the module docstring): each part restores its own
    record, then git decides what became of every task. The parts built from the record (the
    reconciler, the main loop with its planner) restore theirs as they are built, after this."""
    tip = await hub.tip()
    validator.restore(NameState(known_ids=state.known_ids, known_branches=state.known_branches,
                                id_counter=state.id_counter))
    ledger.restore(state.ledger, state.handoffs)
    budget.restore(state.spent)
    found = Recovered()
    git = hub.git
    # A start the target no longer holds (rewritten since): the whole branch says what landed.
    since = f"{state.start_commit}..{tip}" if await git.rev_parse(state.start_commit) else tip
    landed = {value for _, value in await trailers(git, since, TRAILER)}
    carried = {value for _, value in await trailers(git, since, CONTINUES)}
    for task in state.tasks:
        if task.id in landed:
            if task.status != TaskStatus.LANDED:
                task.status, task.reason = TaskStatus.LANDED, "its commit is on the target branch"
                found.landed.append(task.id)
            ledger.settled(task.id)
        elif task.id in carried and task.status not in TERMINAL:
            task.status, task.reason = TaskStatus.SUPERSEDED, "carried on by a continuation that landed"
            ledger.settled(task.id)
        elif task.status in (TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.PENDING):
            await _unfinished(task, state.handoffs.get(task.id), hub, found)
        scheduler.add(task)
    for task in scheduler.with_status(TaskStatus.DECOMPOSED):
        kids = scheduler.children(task.id)
        if kids and all(k.status in ENDED for k in kids):
            ledger.review_parent(task.id)
    known = {t.branch for t in state.tasks}
    out = await git.run("for-each-ref", "--format=%(refname:short)", f"refs/heads/{hub.prefix}")
    for branch in out.splitlines():
        if branch not in known:
            validator.reserve([branch])
            found.set_aside.append(branch)
            emit(RunWarning(code="branch.set_aside", message=f"branch {branch} belongs to no task of the recorded run; it is set aside "
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

