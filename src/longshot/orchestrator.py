"""The composition root: builds every component from `Config` and drives a run.

`Orchestrator.run` is the main loop on one screen: ask the planner, start ready tasks
while worker slots are free, send completed work to the merge queue, feed handoffs back
to the planner, and stop when the planner has nothing more and nothing is open. Workers,
the merge consumer and planner calls run in one `asyncio.TaskGroup`, so an unexpected
error stops everything cleanly instead of being lost in a background task.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from collections.abc import Awaitable
from typing import Any

from longshot.config import Config
from longshot.errors import ConfigError, LongshotError
from longshot.events import (
    Bus, CheckFinished, ChecksPlanned, Emit, FinalizationAttempt, RunError, TaskRejected, RunFinished, RunStarted, RunWarning,
    SandboxProfile,
)
from longshot.harnesses.base import Harness
from longshot.harnesses.builtin import BuiltinHarness
from longshot.harnesses.external import ExternalHarness, load_agent
from longshot.hub import Hub
from longshot.harnesses.context import context_window
from longshot.llm.base import ROLES, ChatModel, Role
from longshot.llm.budget import RunBudget
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog
from longshot.llm.router import Router
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.checks import CheckSource
from longshot.pipeline.finalize import Account, Verdict, verdict
from longshot.pipeline.reconcile import Reconciler
from longshot.pipeline.gate import Gate
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.converse import Conversation
from longshot.pipeline.decompose import SplitRules, Subplanner, aggregate, needs_split
from longshot.pipeline.explore import Explorer
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.plan import PlanOutcome, Planner, Progress
from longshot.pipeline.schedule import Scheduler
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxProvider
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import Handoff, MergeResult, Task, TaskStatus

REPLAN_AFTER_HANDOFFS = 3


def build_model(config: Config, bus: Bus, budget: RunBudget, request_log: Path | None = None) -> Router:
    """The router over every configured endpoint, with the run's budget and request log."""
    endpoints = [
        (OpenAICompatEndpoint(name=ep.name, base_url=ep.base_url, api_key=ep.api_key.get_secret_value(),
                              max_tokens=config.llm_max_tokens, temperature=config.llm_temperature,
                              timeout=config.llm_timeout), ep.weight)
        for ep in config.endpoints
    ]
    return Router(endpoints, {role: config.model_for(role) for role in ROLES}, bus.emit, budget=budget,
                  prices=PriceTable(config.llm_prices_file),
                  request_log=RequestLog(request_log, config.secrets()) if request_log else None,
                  max_concurrency=config.llm_max_concurrency, rest_seconds=config.llm_endpoint_rest)


def harness_paths(config: Config) -> list[str]:
    """Read-only paths an external harness needs inside the sandbox (its install)."""
    if config.worker_harness == "builtin":
        return []
    spec = load_agent(config.worker_harness)
    found = config.harness_bin or shutil.which(spec.bin)
    if not found or not os.path.exists(found):
        raise ConfigError(f"HARNESS_BIN: {spec.name} ({spec.bin}) was not found. Fix: {spec.install}, "
                          "then set HARNESS_BIN to its path.")
    real = os.path.realpath(found)
    return sorted({os.path.dirname(os.path.dirname(p)) for p in (os.path.abspath(found), real)})


def build_provider(config: Config) -> SandboxProvider:
    if config.sandbox_provider != "local":
        raise ConfigError(f"SANDBOX_PROVIDER: {config.sandbox_provider!r} is not available in this version. "
                          "Fix: set SANDBOX_PROVIDER=local.")
    if config.sandbox_isolation == "bubblewrap" and shutil.which("bwrap") is None:
        raise ConfigError("SANDBOX_ISOLATION: bubblewrap (bwrap) is not installed, and workers must not run "
                          "model-written commands unisolated. Fix: install it (apt-get install bubblewrap), "
                          "or set SANDBOX_ISOLATION=none to run without isolation at your own risk.")
    limits = Limits(memory_mb=config.sandbox_memory_mb, cpu_cores=config.sandbox_cpu_cores,
                    processes=config.sandbox_max_processes, open_files=config.sandbox_max_open_files,
                    disk_mb=config.sandbox_disk_mb, files=config.sandbox_max_files)
    return LocalSandboxProvider(config.longshot_work_dir.resolve(), LocalOptions(
        isolation=config.sandbox_isolation, network=config.sandbox_network == "on", limits=limits,
        setup_command=config.sandbox_setup_command, setup_timeout=config.sandbox_setup_timeout,
        ro_paths=[p for p in config.sandbox_ro_paths.split(":") if p] + harness_paths(config),
        max_file_bytes=config.snapshot_max_file_mb * 1024 * 1024, max_changed_files=config.snapshot_max_files,
        author=(config.git_commit_name, config.git_commit_email), tasks_dir=config.sandbox_tasks_dir,
    ))


def build_harness(config: Config, model: ChatModel, prompts: Prompts, emit: Emit) -> Harness:
    if config.worker_harness == "builtin":
        return BuiltinHarness(model, prompts, emit, max_steps=config.task_max_steps,
                              max_tokens=config.task_max_tokens, model_name=config.model_for("worker"),
                              context_limit=config.llm_context_window)
    return ExternalHarness(load_agent(config.worker_harness), model, prompts, emit,
                           model_name=config.model_for("worker"), executable=config.harness_bin,
                           timeout=config.worker_timeout)


class Orchestrator:
    """One run: owns the scheduler, the merge queue, the ledger and the planner conversation."""

    def __init__(self, config: Config, bus: Bus, model: ChatModel, provider: SandboxProvider,
                 budget: RunBudget | None = None) -> None:
        self.config = config
        self.emit = bus.emit
        self.model = model
        self.provider = provider
        self.budget = budget or RunBudget()
        author = (config.git_commit_name, config.git_commit_email)
        work_dir = config.longshot_work_dir.resolve()
        self.hub = Hub(Hub.location(work_dir, config.git_repo_url), config.git_repo_url, config.git_main_branch, author)
        self.prompts = Prompts()
        self.scheduler = Scheduler(self.emit, hold_overlaps=config.scope_overlap == "hold")
        self.merge_queue = MergeQueue(self.hub, config.merge_strategy, self.emit, self._merged,
                                      prefix=config.git_branch_prefix, max_batch=config.merge_batch)
        self.ledger = Ledger(self.scheduler, self.merge_queue, self.budget, self.emit, prefix=config.git_branch_prefix)
        self.validator = TaskValidator(prefix=config.git_branch_prefix, main_branch=config.git_main_branch,
                                       max_tasks=config.max_tasks_per_sprint)
        self.explorer = Explorer(self.hub.git, self.hub.tip)
        self.planner = Planner(self._conversation("planner", "planner"), self.prompts, self.validator, self.hub,
                               self.emit)
        self.rules = SplitRules(max_files=config.subplan_max_files, max_modules=config.subplan_max_modules,
                                max_depth=config.subplan_max_depth)
        self.subplanners: dict[str, Subplanner] = {}
        self.runner = TaskRunner(self.hub, provider, build_harness(config, model, self.prompts, self.emit),
                                 self.emit, timeout=config.worker_timeout)
        self._changed = asyncio.Event()
        self._running: set[str] = set()
        self._errors: list[str] = []
        self._finalizing = False
        self._final_rounds = 0

    def _conversation(self, role: Role, prompt: str, task_id: str | None = None) -> Conversation:
        window = context_window(self.config.model_for(role), self.config.llm_context_window or 128_000)
        return Conversation(role, self.model, self.explorer, self.emit, self.prompts.render(prompt), window=window,
                            task_id=task_id)

    async def run(self, request: str, *, log_path: str = "") -> Verdict:
        started = time.monotonic()
        self.emit(RunStarted(request=request, repo=self.config.git_repo_url,
                             target_branch=self.config.git_main_branch,
                             max_workers=self.config.max_workers, log_path=log_path,
                             max_tokens=self.config.run_max_tokens, max_cost_usd=self.config.run_max_cost_usd))
        self._announce_isolation()
        await self.hub.open()
        start = await self.hub.tip()
        self.checks = CheckSource(self.hub, self.config.check_commands)
        await self._announce_checks(start)
        self.reconciler = Reconciler(
            self.provider, self.hub, self.checks, self.scheduler, self.validator,
            lambda: self._conversation("reconciler", "reconciler"), self.prompts, self.emit, start_commit=start,
            timeout=self.config.check_timeout, prefix=self.config.git_branch_prefix,
            interval=self.config.reconciler_interval, red_interval=self.config.reconciler_red_interval)
        if self.config.merge_gate != "off":
            self.merge_queue.gate = Gate(self.provider, self.hub, self.checks, self.emit,
                                         timeout=self.config.check_timeout, branch=f"{self.config.git_branch_prefix}gate")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.merge_queue.run())
            self._sweeper = tg.create_task(self.reconciler.loop(self._fixes))
            try:
                await self._drive(request, tg)
            finally:
                self._sweeper.cancel()
                self.merge_queue.close()
        result = await self._finish()
        self.emit(RunFinished(exit_code=result.exit_code, green=result.green, landed=result.landed,
                              failed=result.failed, unlanded=result.unlanded, summary=result.summary,
                              duration_s=round(time.monotonic() - started, 3), tokens=self.budget.tokens,
                              cost_usd=round(self.budget.cost_usd, 6)))
        return result

    async def _announce_checks(self, tip: str) -> None:
        if self.checks.explicit_none:
            self.emit(ChecksPlanned(source="none"))
            return
        plan = await self.checks.plan_for(tip)
        source = "configured" if self.checks.configured is not None else "detected"
        self.emit(ChecksPlanned(source=source if plan.checks else "none", commands=plan.commands,
                                ecosystems=plan.ecosystems, setup=bool(plan.setup)))
        if not plan.checks:
            self.emit(RunWarning(message="NO CHECKS: no check commands are configured and none were detected on "
                                         f"{self.config.git_main_branch}, so nothing can tell a green branch from a red "
                                         "one; detection runs again on each sweep. Set CHECK_COMMANDS (or "
                                         "CHECK_COMMANDS=none to run without checks on purpose)."))
            if self.config.merge_gate == "on":
                self.emit(RunWarning(message="MERGE_GATE=on but no check commands are configured or detected: "
                                             "work lands unchecked until checks appear (set CHECK_COMMANDS)"))

    def _fixes(self, tasks: list[Task]) -> None:
        self._add(tasks)
        self._changed.set()

    def _announce_isolation(self) -> None:
        if self.config.sandbox_isolation == "none":
            self.emit(RunWarning(message="SANDBOX_ISOLATION=none: model-written commands run on this machine "
                                         "without isolation, with your user's rights"))
        profile = self.provider.describe()
        self.emit(SandboxProfile(provider=self.config.sandbox_provider, isolation=self.config.sandbox_isolation,
                                 description=profile.description, weakened=profile.weakened))

    async def _drive(self, request: str, tg: asyncio.TaskGroup) -> None:
        """The main loop: plan, start what is ready while slots are free, replan, stop when done."""
        slots = self.config.max_workers
        planning: asyncio.Task[PlanOutcome] | None = self._spawn(tg, self._plan(self.planner.initial(request)))
        last_proposed = -1
        while True:
            if planning is not None and planning.done():
                outcome = planning.result()
                planning, last_proposed = None, outcome.proposed
                self._add(outcome.tasks)
            if self.budget.exhausted:
                for task in self.scheduler.with_status(TaskStatus.PENDING):
                    self.scheduler.move(task, TaskStatus.CANCELLED, f"{self.budget.exhausted} spent before it started")
            while self.ledger.parents_to_review and len(self._running) < slots:
                parent = self.scheduler.tasks[self.ledger.parents_to_review.pop(0)]
                self._running.add(parent.id)
                self._spawn(tg, self._subplan(parent, again=True))
            while len(self._running) < slots and (ready := self.scheduler.ready()):
                task = ready[0]  # one at a time: a task started now may hold back the next (shared files)
                self.scheduler.move(task, TaskStatus.RUNNING)
                self._running.add(task.id)
                job = self._subplan(task) if needs_split(task, self.rules) else self._work(task)
                self._spawn(tg, job)
            open_work = self.scheduler.open_work() or bool(self.ledger.parents_to_review)
            if planning is None:
                planned_out = last_proposed == 0 or self.budget.exhausted or self._finalizing
                if planned_out and not open_work:
                    if await self._finalize_round():
                        continue
                    return
                quiet = not open_work
                if not planned_out and len(self._running) < slots and (
                        len(self.ledger.unsent) >= REPLAN_AFTER_HANDOFFS or quiet):
                    if self.planner.iteration >= self.config.planner_max_iterations:
                        if not self._finalizing:
                            self.emit(RunWarning(message=f"planner stopped at PLANNER_MAX_ITERATIONS="
                                                         f"{self.config.planner_max_iterations}"))
                        self._finalizing = self._finalizing or not open_work
                        if not open_work:
                            continue
                    else:
                        planning = self._spawn(tg, self._plan(self.planner.follow_up(
                            self.ledger.take_reports(), self._progress())))
                        continue
            await self._changed.wait()
            self._changed.clear()

    def _add(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.id in self.scheduler.tasks:
                self.emit(TaskRejected(task_id=task.id, reason="an id already used in this run",
                                       description=task.description[:200]))
                continue
            continued = self.scheduler.tasks.get(task.continue_from or "")
            if continued is not None:
                task.base_branch = continued.branch
            self.scheduler.add(task)

    def _progress(self) -> Progress:
        tasks = list(self.scheduler.tasks.values())
        budget = ""
        if self.budget.max_tokens or self.budget.max_cost_usd:
            budget = (f"tokens used {self.budget.tokens}" + (f" of {self.budget.max_tokens}" if self.budget.max_tokens else "")
                      + f"; cost ${self.budget.cost_usd:.2f}" + (f" of ${self.budget.max_cost_usd}" if self.budget.max_cost_usd else ""))
        summary = "\n".join(f"{t.id} [{t.status}] {t.description[:80]}" for t in tasks if t.parent is None)
        self.planner.notes += self.ledger.notes + self.reconciler.notes
        self.ledger.notes, self.reconciler.notes = [], []
        return Progress(active=self.scheduler.active, landed=sum(t.status == TaskStatus.LANDED for t in tasks),
                        failed=sum(t.status == TaskStatus.FAILED for t in tasks), queue_depth=self.merge_queue.depth,
                        budget=budget, summary=summary)

    async def _plan(self, call: Awaitable[PlanOutcome]) -> PlanOutcome:
        """A planner call that cannot take the task group down: failure ends planning."""
        try:
            return await call
        except LongshotError as e:
            self._errors.append(f"planning failed: {e}")
            self.emit(RunError(message=self._errors[-1]))
            return PlanOutcome(tasks=[], proposed=0)

    def _spawn(self, tg: asyncio.TaskGroup, coro: Any) -> asyncio.Task[Any]:
        task = tg.create_task(coro)
        task.add_done_callback(lambda _: self._changed.set())
        return task

    async def _work(self, task: Task) -> None:
        try:
            handoff = await self.runner.run(task)
        except LongshotError as e:
            handoff = Handoff(task_id=task.id, status="failed", summary=f"the task could not run: {e}")
        finally:
            self._running.discard(task.id)
        self.ledger.handoff(task, handoff)

    async def _subplan(self, task: Task, *, again: bool = False) -> None:
        """Split ``task`` (or review its finished subtasks); holds a worker slot meanwhile."""
        sub = self.subplanners.get(task.id)
        if sub is None:
            sub = self.subplanners[task.id] = Subplanner(
                task, self._conversation("subplanner", "subplanner", task.id), self.prompts, self.hub,
                self.validator, self.emit, self.rules)
        try:
            children = await (sub.again(self.ledger.take_child_reports(task.id)) if again else sub.first())
        except LongshotError as e:
            self.emit(RunWarning(task_id=task.id, message=f"subplanner failed: {e}"))
            children = []
        if not again and not children:
            task.atomic = True  # the subplanner's word (or its failure): one worker does it as it is
            await self._work(task)
            return
        self._running.discard(task.id)
        if children:
            if task.status == TaskStatus.RUNNING:
                self.scheduler.move(task, TaskStatus.DECOMPOSED, f"split into {len(children)} subtasks")
            self._add(children)
        else:
            kids = self.scheduler.children(task.id)
            self.ledger.handoff(task, aggregate(task, kids, self.ledger.handoffs))

    def _merged(self, task: Task, result: MergeResult) -> None:
        self.ledger.merged(task, result)
        self._changed.set()

    async def _finalize_round(self) -> bool:
        """One round of finalization; True when it started work that must be waited for.

        Re-land every completed but unlanded branch on the current tip, wait for the queue to
        drain, sweep, and issue fixes for what is broken. Rounds stop at
        FINALIZATION_MAX_ATTEMPTS, when nothing is broken, or when no fix can be issued.
        """
        self._finalizing = True
        self._sweeper.cancel()  # finalization sweeps by itself, after each drain
        if not self.config.finalization_enabled or self._final_rounds >= self.config.finalization_max_attempts:
            return False
        self._final_rounds += 1
        self.emit(FinalizationAttempt(attempt=self._final_rounds, max_attempts=self.config.finalization_max_attempts))
        for task in self.ledger.relandable(gated=self.merge_queue.gate is not None and self.checks.known):
            self.ledger.reland(task)
        while self.scheduler.with_status(TaskStatus.MERGING):
            await self._changed.wait()
            self._changed.clear()
        outcome = await self.reconciler.sweep(fix=not self.budget.exhausted, final=True)
        self._add(outcome.fixes)
        return self.scheduler.open_work()

    async def _finish(self) -> Verdict:
        outcome = self.reconciler.last
        if outcome is None or outcome.commit != await self.hub.tip() or outcome.discarded:
            outcome = await self.reconciler.sweep(fix=False)
        plan = await self.checks.plan_for(outcome.commit)
        checks = outcome.results if plan.checks or self.checks.explicit_none else None
        for r in outcome.results:
            self.emit(CheckFinished(command=r.command, exit_code=r.exit_code, ok=r.ok, output_tail=r.output_tail))
        errors = list(self._errors)
        if self.budget.exhausted and not any(self.budget.exhausted in e for e in errors):
            errors.append(f"stopped early: {self.budget.exhausted} spent")
        preexisting = sorted((self.reconciler.preexisting or set()) & {f.signature for f in outcome.failures})
        return verdict(Account(tasks=list(self.scheduler.tasks.values()), checks=checks,
                               unlanded=dict(self.ledger.unlanded), errors=errors, preexisting=preexisting,
                               failures=[f.signature for f in outcome.failures], tokens=self.budget.tokens,
                               cost_usd=self.budget.cost_usd), self.emit)
