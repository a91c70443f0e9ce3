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
    Bus, Emit, HandoffReceived, RunError, RunFinished, RunStarted, RunWarning, SandboxProfile,
)
from longshot.harnesses.base import Harness
from longshot.harnesses.builtin import BuiltinHarness
from longshot.harnesses.external import ExternalHarness, load_agent
from longshot.hub import Hub
from longshot.llm.base import ROLES, ChatModel
from longshot.llm.budget import RunBudget
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog
from longshot.llm.router import Router
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.finalize import Verdict, detect_checks, run_checks, verdict
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.plan import PlanOutcome, Planner
from longshot.pipeline.schedule import Scheduler
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxProvider
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import TRANSITIONS, Handoff, MergeResult, Task, TaskStatus

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
        author=(config.git_commit_name, config.git_commit_email),
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
    """One run: owns the scheduler, the merge queue and the planner conversation."""

    def __init__(self, config: Config, bus: Bus, model: ChatModel, provider: SandboxProvider,
                 budget: RunBudget | None = None) -> None:
        self.config = config
        self.bus = bus
        self.emit = bus.emit
        self.model = model
        self.provider = provider
        author = (config.git_commit_name, config.git_commit_email)
        work_dir = config.longshot_work_dir.resolve()
        self.hub = Hub(Hub.location(work_dir, config.git_repo_url), config.git_repo_url, config.git_main_branch, author)
        prompts = Prompts()
        self.scheduler = Scheduler(self.emit)
        self.merge_queue = MergeQueue(self.hub, config.merge_strategy, self.emit, self._merged)
        validator = TaskValidator(prefix=config.git_branch_prefix, main_branch=config.git_main_branch)
        self.planner = Planner(model, prompts, validator, self.hub, self.emit)
        harness = build_harness(config, model, prompts, self.emit)
        self.runner = TaskRunner(self.hub, provider, harness, self.emit, timeout=config.worker_timeout)
        self.budget = budget or RunBudget()
        self._changed = asyncio.Event()
        self._reports: dict[str, dict[str, Any]] = {}
        self._unsent: list[str] = []
        self._unlanded: dict[str, str] = {}
        self._errors: list[str] = []

    async def run(self, request: str, *, log_path: str = "") -> Verdict:
        started = time.monotonic()
        self.emit(RunStarted(request=request, repo=self.config.git_repo_url,
                             target_branch=self.config.git_main_branch,
                             max_workers=self.config.max_workers, log_path=log_path))
        self._announce_isolation()
        await self.hub.open()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.merge_queue.run())
            try:
                await self._drive(request, tg)
            finally:
                self.merge_queue.close()
        result = await self._finish()
        self.emit(RunFinished(exit_code=result.exit_code, green=result.green, landed=result.landed,
                              failed=result.failed, unlanded=result.unlanded, summary=result.summary,
                              duration_s=round(time.monotonic() - started, 3), tokens=self.budget.tokens,
                              cost_usd=round(self.budget.cost_usd, 6)))
        return result

    def _announce_isolation(self) -> None:
        if self.config.sandbox_isolation == "none":
            self.emit(RunWarning(message="SANDBOX_ISOLATION=none: model-written commands run on this machine "
                                         "without isolation, with your user's rights"))
        profile = self.provider.describe()
        self.emit(SandboxProfile(provider=self.config.sandbox_provider, isolation=self.config.sandbox_isolation,
                                 description=profile.description, weakened=profile.weakened))

    async def _drive(self, request: str, tg: asyncio.TaskGroup) -> None:
        slots = self.config.max_workers
        planning: asyncio.Task[PlanOutcome] | None = self._spawn(tg, self._plan(self.planner.initial(request)))
        running: set[str] = set()
        last_proposed = -1
        while True:
            if planning is not None and planning.done():
                outcome = planning.result()
                planning, last_proposed = None, outcome.proposed
                for task in outcome.tasks:
                    self._link_continuation(task)
                    self.scheduler.add(task)
            if self.budget.exhausted:
                for task in self.scheduler.with_status(TaskStatus.PENDING):
                    self.scheduler.move(task, TaskStatus.CANCELLED, f"{self.budget.exhausted} spent before it started")
            for task in self.scheduler.ready()[: max(0, slots - len(running))]:
                self.scheduler.move(task, TaskStatus.RUNNING)
                running.add(task.id)
                self._spawn(tg, self._work(task, running))
            open_work = self.scheduler.open_work()
            if planning is None:
                if (last_proposed == 0 or self.budget.exhausted) and not open_work:
                    return
                quiet = not open_work
                if len(running) < slots and (len(self._unsent) >= REPLAN_AFTER_HANDOFFS or quiet):
                    if self.planner.iteration >= self.config.planner_max_iterations:
                        self.emit(RunWarning(message=f"planner stopped at PLANNER_MAX_ITERATIONS="
                                                     f"{self.config.planner_max_iterations}"))
                        if not open_work:
                            return
                    else:
                        follow = self.planner.follow_up(self._take_reports(), self.scheduler.active)
                        planning = self._spawn(tg, self._plan(follow))
                        continue
            await self._changed.wait()
            self._changed.clear()

    def _link_continuation(self, task: Task) -> None:
        continued = self.scheduler.tasks.get(task.continue_from or "")
        if continued is not None:
            task.base_branch = continued.branch

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

    async def _work(self, task: Task, running: set[str]) -> None:
        try:
            handoff = await self.runner.run(task)
        except LongshotError as e:
            handoff = Handoff(task_id=task.id, status="failed", summary=f"the task could not run: {e}")
        finally:
            running.discard(task.id)
        handoff.metrics.cost_usd = round(self.budget.cost_by_task.get(task.id, 0.0), 6)
        handoff.metrics.tokens_used = self.budget.by_task.get(task.id, handoff.metrics.tokens_used)
        self.emit(HandoffReceived(task_id=task.id, handoff=handoff))
        self._report(handoff)
        if handoff.status == "complete" and handoff.commit:
            self.scheduler.move(task, TaskStatus.MERGING)
            self.merge_queue.submit(task, handoff.commit)
        elif handoff.status == "complete":
            self.scheduler.move(task, TaskStatus.UNCHANGED, "complete without changes")
        else:
            self.scheduler.move(task, TaskStatus(handoff.status), handoff.summary[:300])
            if handoff.status == "partial" and handoff.commit:
                self._unlanded[task.id] = "partial work on its branch"

    def _report(self, handoff: Handoff) -> None:
        self._reports[handoff.task_id] = {
            "task_id": handoff.task_id, "status": handoff.status, "summary": handoff.summary[:600],
            "files_changed": handoff.files_changed[:30], "concerns": handoff.concerns,
            "suggestions": handoff.suggestions, "landed": None if handoff.status == "complete" and handoff.commit else False,
        }
        self._unsent.append(handoff.task_id)

    def _take_reports(self) -> list[dict[str, Any]]:
        ids, self._unsent = self._unsent, []
        return [self._reports[i] for i in ids]

    def _merged(self, task: Task, result: MergeResult) -> None:
        self._reports[task.id]["landed"] = result.landed
        if result.landed:
            self.scheduler.move(task, TaskStatus.LANDED)
            continued = self.scheduler.tasks.get(task.continue_from or "")
            if continued is not None and TaskStatus.SUPERSEDED in TRANSITIONS[continued.status]:
                self.scheduler.move(continued, TaskStatus.SUPERSEDED, f"carried on by {task.id}, which landed")
                self._unlanded.pop(continued.id, None)
        else:
            self.scheduler.move(task, TaskStatus.FAILED, result.reason)
            self._unlanded[task.id] = result.reason
            self.planner.notes.append(f"{task.id} did NOT land: {result.reason}")
        self._changed.set()

    async def _finish(self) -> Verdict:
        commands = self.config.check_commands
        if commands is None:
            commands = detect_checks(await self.hub.files(await self.hub.tip())) or None
        checks = None
        if commands is not None:
            checks = await run_checks(self.provider, self.hub, commands, timeout=self.config.check_timeout,
                                      branch=f"{self.config.git_branch_prefix}final-checks", emit=self.emit)
        errors = list(self._errors)
        if self.budget.exhausted and not any(self.budget.exhausted in e for e in errors):
            errors.append(f"stopped early: {self.budget.exhausted} spent")
        return verdict(list(self.scheduler.tasks.values()), checks, sorted(self._unlanded), self.emit,
                       errors=errors)
