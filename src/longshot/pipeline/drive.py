"""The main loop of a run, on one screen: plan, dispatch, replan, finalize, or stop.

`Driver.drive` asks the planner, starts ready tasks while worker slots are free (one
``MAX_WORKERS`` limit for workers and subplanners alike), feeds handoffs back to the
planner, and when the planner has nothing more and nothing is open runs the finalization
rounds. Workers, subplanners and planner calls run in the caller's `asyncio.TaskGroup`, so
an unexpected error stops everything cleanly instead of being lost in a background task.

`Driver.stop` (SIGINT/SIGTERM) ends dispatching; `Driver.shutdown` then gives running
workers ``grace`` seconds to hand off and cancels the rest, whose work is salvaged onto
their branches (`TaskRunner`); they stay ``running`` in the durable state, so a resumed
run dispatches them again from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from longshot.budget import RunBudget
from longshot.crash import CrashPoints
from longshot.errors import LongshotError
from longshot.events import Emit, FinalizationAttempt, RunError, RunWarning, TaskRejected
from longshot.pipeline.decompose import SplitRules, Subplanner, aggregate, needs_split
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.plan import PlanOutcome, Planner, PlannerState, Progress
from longshot.pipeline.reconcile import Reconciler, SweepOutcome
from longshot.pipeline.schedule import Scheduler
from longshot.pipeline.state import Capture, StateStore
from longshot.types import Handoff, MergeResult, Task, TaskStatus

REPLAN_AFTER_HANDOFFS = 3


Verify = Callable[[SweepOutcome, list[Task], dict[str, Handoff]], Awaitable[list[Task]]]
"""The finalization check of the features: (the sweep, every task, the handoffs) -> verification tasks."""


@dataclass(frozen=True)
class DriveOptions:
    max_workers: int
    planner_max_iterations: int
    finalization_enabled: bool
    finalization_max_attempts: int
    grace: float
    rules: SplitRules


class Driver:
    def __init__(self, options: DriveOptions, scheduler: Scheduler, ledger: Ledger, planner: Planner,
                 merge_queue: MergeQueue, runner: TaskRunner, budget: RunBudget, state: StateStore,
                 new_subplanner: Callable[[Task], Subplanner], emit: Emit, crash: CrashPoints, *,
                 reconciler: Reconciler, gated_checks: bool, verify: Verify | None = None) -> None:
        self.o = options
        self.scheduler = scheduler
        self.ledger = ledger
        self.planner = planner
        self.merge_queue = merge_queue
        self.runner = runner
        self.budget = budget
        self.state = state
        self.new_subplanner = new_subplanner
        self.emit = emit
        self.crash = crash
        self.verify = verify
        """Finalization: judges the features on a sweep, returns verification tasks for claimed ones."""
        self.flags = PlannerState()
        """Where planning and finalization stand (recorded in the durable state)."""
        self.reconciler = reconciler
        self.gated_checks = gated_checks
        """Whether a gate with known checks judges re-landed partial work (as the run started)."""
        self.errors: list[str] = []
        self.subplanners: dict[str, Subplanner] = {}
        self.changed = asyncio.Event()
        self.stopping = False
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._planning: asyncio.Task[PlanOutcome] | None = None
        self._tg: asyncio.TaskGroup | None = None

    async def drive(self, request: str, tg: asyncio.TaskGroup, capture: Capture, *, resumed: bool,
                    plan_only: bool = False) -> None:
        """The main loop: plan, start what is ready while slots are free, replan, finalize.
        ``capture``: the run's state as it is now, recorded before an answer's tasks start (it
        reads this loop's own part, so it is given here rather than at construction).
        ``plan_only``: return once the first plan is recorded, before anything is dispatched."""
        self._tg = tg
        if not resumed or (self.planner.iteration == 0 and not self.scheduler.tasks):
            self._planning = self._spawn(self._plan(self.planner.initial(request)), "planner")
        while not self.stopping:
            if self._planning is not None and self._planning.done():
                outcome = self._planning.result()
                self._planning, self.flags.last_proposed = None, outcome.proposed
                self.add(outcome.tasks)
                # Recorded with its tasks, never before them: a resumed run asks again for an
                # answer that was lost, instead of believing it was applied.
                self.flags.iteration, self.flags.scratchpad = self.planner.iteration, self.planner.scratchpad
                self.flags.summary = self.planner.conversation.summary
                await self.state.flush(capture, "planner answered")
                if plan_only:
                    return
            if self.budget.exhausted:
                for task in self.scheduler.with_status(TaskStatus.PENDING):
                    self.scheduler.move(task, TaskStatus.CANCELLED, f"{self.budget.exhausted} spent before it started")
            self._dispatch()
            open_work = self.scheduler.open_work() or bool(self.ledger.parents_to_review)
            if self._planning is None:
                # "tasks": [] means nothing more to plan *now*: handoffs that came in since are
                # shown to the planner (once the run is quiet, or three of them) before it ends.
                said_done = self.flags.last_proposed == 0 and not self.ledger.unsent
                planned_out = said_done or bool(self.budget.exhausted) or self.flags.finalizing
                if planned_out and not open_work:
                    if await self._finalize_round():
                        continue
                    self.scheduler.give_up()  # nothing will re-plan what dependents still wait for
                    return
                if not planned_out and len(self._running) < self.o.max_workers and (
                        len(self.ledger.unsent) >= REPLAN_AFTER_HANDOFFS or not open_work):
                    if self.planner.iteration < self.o.planner_max_iterations:
                        self._planning = self._spawn(self._plan(self.planner.follow_up(
                            self.ledger.take_reports(), self.progress())), "planner")
                        continue
                    if not self.flags.finalizing:
                        self.emit(RunWarning(code="planner.max_iterations", message=f"planner stopped at PLANNER_MAX_ITERATIONS="
                                                     f"{self.o.planner_max_iterations}"))
                    self.flags.finalizing = self.flags.finalizing or not open_work
                    if not open_work:
                        continue
            await self.changed.wait()
            self.changed.clear()

    def _dispatch(self) -> None:
        while self.ledger.parents_to_review and len(self._running) < self.o.max_workers:
            parent = self.scheduler.tasks[self.ledger.parents_to_review.pop(0)]
            self._running[parent.id] = self._spawn(self._subplan(parent, again=True), parent.id)
        for task in self.scheduler.start(self.o.max_workers - len(self._running)):
            job = self._subplan(task) if needs_split(task, self.o.rules) else self._work(task)
            self._running[task.id] = self._spawn(job, task.id)

    def snapshot(self) -> PlannerState:
        """The planning part of the durable state: the loop's flags as of the last applied answer,
        with the planner's notes and tip as they are now."""
        live = self.planner.snapshot()
        return self.flags.model_copy(update={"notes": live.notes, "last_tip": live.last_tip})

    async def restore(self, saved: PlannerState, tip: str) -> None:
        """Continue from a recorded run's planning (the planner's conversation included)."""
        self.flags = saved.model_copy()
        await self.planner.restore(saved, tip)

    @property
    def busy(self) -> int:
        """Worker slots in use: running workers and thinking subplanners."""
        return len(self._running)

    def add(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.id in self.scheduler.tasks:
                self.emit(TaskRejected(task_id=task.id, reason="an id already used in this run",
                                       description=task.description[:200]))
                continue
            continued = self.scheduler.tasks.get(task.continue_from or "")
            if continued is not None:
                task.base_branch = continued.branch
                task.feature = task.feature or continued.feature
            self.scheduler.add(task)
        self.changed.set()

    def add_fixes(self, tasks: list[Task]) -> None:
        """Fix tasks from a reconciler sweep (recorded at once: they cost a model call)."""
        self.crash.reached("fix.created")
        self.add(tasks)
        self.state.mark("fix tasks")

    def progress(self) -> Progress:
        tasks = list(self.scheduler.tasks.values())
        budget = ""
        if self.budget.max_tokens or self.budget.max_cost_usd:
            budget = (f"tokens used {self.budget.tokens}" + (f" of {self.budget.max_tokens}" if self.budget.max_tokens else "")
                      + f"; cost ${self.budget.cost_usd:.2f}" + (f" of ${self.budget.max_cost_usd}" if self.budget.max_cost_usd else ""))
        summary = "\n".join(f"{t.id} [{t.status}] {t.description[:80]}" for t in tasks if t.parent is None)
        hot = self.scheduler.hot.take_notes() if self.scheduler.hot is not None else []  # one owner, an order, or a union
        self.planner.add_notes(self.ledger.take_notes() + self.reconciler.take_notes() + hot)
        return Progress(active=self.scheduler.active, landed=sum(t.status == TaskStatus.LANDED for t in tasks),
                        failed=sum(t.status == TaskStatus.FAILED for t in tasks), queue_depth=self.merge_queue.depth,
                        budget=budget, summary=summary)

    async def _plan(self, call: Awaitable[PlanOutcome]) -> PlanOutcome:
        """A planner call that cannot take the task group down: failure ends planning."""
        try:
            return await call
        except LongshotError as e:
            self.errors.append(f"planning failed: {e}")
            self.emit(RunError(message=self.errors[-1]))
            return PlanOutcome(tasks=[], proposed=0)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        assert self._tg is not None
        task = self._tg.create_task(coro, name=name)
        task.add_done_callback(lambda _: self.changed.set())
        return task

    async def _work(self, task: Task) -> None:
        try:
            handoff = await self.runner.run(task)
        except LongshotError as e:
            handoff = Handoff(task_id=task.id, status="failed", summary=f"the task could not run: {e}")
        finally:
            self._running.pop(task.id, None)
        self.ledger.handoff(task, handoff)

    async def _subplan(self, task: Task, *, again: bool = False) -> None:
        """Split ``task`` (or review its finished subtasks); holds a worker slot meanwhile."""
        sub = self.subplanners.get(task.id)
        if sub is None:
            sub = self.subplanners[task.id] = self.new_subplanner(task)
        try:
            children = await (sub.again(self.ledger.take_child_reports(task.id)) if again else sub.first())
        except LongshotError as e:
            self.emit(RunWarning(code="subplanner.failed", task_id=task.id, message=f"subplanner failed: {e}"))
            children = []
        if not again and not children:
            task.atomic = True  # the subplanner's word (or its failure): one worker does it as it is
            await self._work(task)
            return
        self._running.pop(task.id, None)
        if children:
            if task.status == TaskStatus.RUNNING:
                self.scheduler.move(task, TaskStatus.DECOMPOSED, f"split into {len(children)} subtasks")
            self.add(children)
        else:
            self.scheduler.give_up(task.id)  # the subplanner re-planned nothing: its waiting subtasks fail
            kids = self.scheduler.children(task.id)
            self.ledger.handoff(task, aggregate(task, kids, self.ledger.handoffs))

    def merged(self, task: Task, result: MergeResult) -> None:
        self.ledger.merged(task, result)
        self.changed.set()

    async def _finalize_round(self) -> bool:
        """One round of finalization; True when it started work that must be waited for.

        Re-land every completed but unlanded branch on the current tip, wait for the queue to
        drain, sweep, and issue fixes for what is broken. Rounds stop at
        FINALIZATION_MAX_ATTEMPTS, when nothing is broken, or when no fix can be issued.
        """
        self.flags.finalizing = True
        if not self.o.finalization_enabled or self.flags.final_rounds >= self.o.finalization_max_attempts:
            return False
        self.flags.final_rounds += 1
        self.emit(FinalizationAttempt(attempt=self.flags.final_rounds, max_attempts=self.o.finalization_max_attempts))
        for task in self.ledger.relandable(gated=self.gated_checks):
            self.ledger.reland(task)
        while self.scheduler.with_status(TaskStatus.MERGING) and not self.stopping:
            await self.changed.wait()
            self.changed.clear()
        if self.stopping:
            return False
        self.scheduler.give_up()  # what the re-landings did not unblock waits for nothing now
        outcome = await self.reconciler.sweep(fix=not self.budget.exhausted, final=True)
        if outcome.fixes:
            self.add_fixes(outcome.fixes)
        elif self.verify is not None and not self.budget.exhausted:
            self.add(await self.verify(outcome, list(self.scheduler.tasks.values()), self.ledger.handoffs))
            self.state.mark("verification tasks")
        return self.scheduler.open_work()

    def stop(self) -> None:
        """Stop dispatching and planning (the first SIGINT/SIGTERM)."""
        self.stopping = True
        self.changed.set()

    async def shutdown(self) -> list[str]:
        """After `stop`: wait ``grace`` for running workers, cancel the rest (their work is
        salvaged); return the ids of the tasks left running."""
        if self._planning is not None:
            self._planning.cancel()
        running = [t for t in self._running.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=self.o.grace)
        left = [name for name, t in self._running.items() if not t.done()]
        for t in self._running.values():
            t.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        return left
