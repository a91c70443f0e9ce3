"""The composition root: builds every component from `Config` and runs one job.

`Orchestrator.run` starts a run or resumes the one recorded in the target repository
(`pipeline/state.py`, `pipeline/resume.py`), runs the main loop (`pipeline/drive.py`)
beside the merge queue, the reconciler's sweeps, the monitor and the state writer in one
`asyncio.TaskGroup`, and ends with the verdict. SIGINT/SIGTERM stop it cleanly and
resumably (exit 130); a second signal exits at once, still resumable.

Built in two steps, each object complete when built and never patched afterwards:
`__init__` builds what needs no run record, in dependency order; once the record is
loaded (and restored into those parts), `_stages` builds what is made from it: the
reconciler, the main loop and the monitor (`Stages`). Where two parts need each other,
the later one is handed over when the earlier starts running: the merge queue is given
where its results go (`MergeQueue.run`), the state writer and the main loop what the
record is (`StateStore.run`, `Driver.drive`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from longshot.budget import RunBudget
from longshot.build import build_harness, own_paths, worker_price
from longshot.config import Config
from longshot.crash import CrashPoints
from longshot.errors import ConfigError
from longshot.events import (
    Bus, CheckFinished, ChecksPlanned, ConfigTracked, Emit, Event, RunFinished, RunInterrupted, RunResumed, RunStarted,
    RunWarning, SandboxProfile,
)
from longshot.hub import Hub
from longshot.ownfiles import own_paths_in
from longshot.llm.base import ROLES, ChatModel, Role
from longshot.pipeline.checks import SHOWN_OUTPUT, CheckSource
from longshot.pipeline.converse import Conversation
from longshot.pipeline.decompose import SplitRules, Subplanner
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.drive import DriveOptions, Driver
from longshot.pipeline.estimate import estimate, preview, task_history
from longshot.pipeline.explore import Explorer
from longshot.pipeline.featurerun import FeatureRun
from longshot.pipeline.finalize import Account, Verdict, verdict
from longshot.pipeline.foresee import ConflictWatch
from longshot.pipeline.gate import Gate
from longshot.pipeline.hotfiles import HotFiles, UnionFiles
from longshot.pipeline.ledger import Ledger
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.monitor import Monitor
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.plan import Planner
from longshot.pipeline.reconcile import Reconciler
from longshot.pipeline.reset import reset
from longshot.pipeline.resume import Recovered, capture, recover
from longshot.pipeline.salvage import clean_leftovers
from longshot.pipeline.schedule import Scheduler
from longshot.pipeline.state import Capture, RunState, StateStore, decide, owner_tag
from longshot.prompts import Prompts
from longshot.runlock import RunLock
from longshot.sandboxes.base import SandboxProvider
from longshot.target import check_target
from longshot.tools.context import context_window
from longshot.types import Task


@dataclass(frozen=True)
class Stages:
    """The parts built from the run's record (`Orchestrator._stages`), complete."""

    reconciler: Reconciler
    driver: Driver
    monitor: Monitor
    capture: Capture
    """The record brought up to date from every part: what the state writer writes."""


class Orchestrator:
    """One run: wires the stages from `Config`, starts or resumes, and gives the verdict."""

    def __init__(self, config: Config, bus: Bus, model: ChatModel, provider: SandboxProvider,
                 budget: RunBudget | None = None) -> None:
        self.config = config
        self.bus = bus
        self.emit = bus.emit
        self.model = model
        self.provider = provider
        self.budget = budget or RunBudget()
        self.crash = CrashPoints(config.longshot_crash_at)
        author = (config.git_commit_name, config.git_commit_email)
        work_dir = config.longshot_work_dir.resolve()
        self.own_paths = own_paths(config)
        self.hub = Hub(Hub.location(work_dir, config.git_repo_url), config.git_repo_url, config.git_main_branch,
                       author, prefix=config.git_branch_prefix, own_paths=self.own_paths,
                       deliver_config=config.deliver_config_files == "allow")
        self.lock = RunLock(self.hub.path.with_name(self.hub.path.name + ".lock"))
        self.state = StateStore(self.hub, self.emit, self.crash)
        self.prompts = Prompts()
        self.union = UnionFiles(config.union_merge_files.split(","))
        self.scheduler = Scheduler(self.emit, hold_overlaps=config.scope_overlap == "hold", hot=HotFiles(
            self.emit, self.union, scopes=config.hot_file_scopes, conflicts=config.hot_file_conflicts))
        self.validator = TaskValidator(prefix=config.git_branch_prefix, main_branch=config.git_main_branch,
                                       max_tasks=config.max_tasks_per_sprint, tasks=self.scheduler.tasks)
        self.checks = CheckSource(self.hub, config.check_commands)
        gate = Gate(provider, self.hub, self.checks, self.emit, timeout=config.check_timeout,
                    branch=f"{config.git_branch_prefix}gate") if config.merge_gate != "off" else None
        self.merge_queue = MergeQueue(self.hub, config.merge_strategy, self.emit, gate=gate,
                                      prefix=config.git_branch_prefix, max_batch=config.merge_batch, crash=self.crash,
                                      own_paths=self.own_paths, union=self.union)
        self.ledger = Ledger(self.scheduler, self.merge_queue, self.budget, self.emit, prefix=config.git_branch_prefix,
                             free_branch=self.validator.free_branch)
        self.explorer = Explorer(self.hub.git, self.hub.tip)
        self.planner = Planner(self._conversation("planner", "planner"), self.prompts, self.validator, self.hub,
                               self.emit)
        self.features = FeatureRun(self.emit, self.validator, self.hub, provider, self.checks, self.scheduler.tasks.get,
                                   prefix=config.git_branch_prefix, timeout=config.check_timeout,
                                   worker_model=config.model_for("worker"))
        self.rules = SplitRules(max_files=config.subplan_max_files, max_modules=config.subplan_max_modules,
                                max_depth=config.subplan_max_depth)
        self.watch = ConflictWatch(self.hub, self.union, self.emit, interval=config.conflict_check_interval,
                                   deliverable=config.worker_harness == "builtin")
        self.runner = TaskRunner(self.hub, provider, build_harness(config, model, self.prompts, self.emit, self.watch),
                                 self.emit, timeout=config.worker_timeout, crash=self.crash,
                                 on_branch=lambda b: self.state.mark("worker result", b), watch=self.watch)
        bus.add_sink(self.watch)
        bus.add_sink(self._record_changes)
        bus.add_sink(self.features)
        self.signal: str | None = None

    def _conversation(self, role: Role, prompt: str, task_id: str | None = None) -> Conversation:
        window = context_window(self.config.model_for(role), self.config.llm_context_window or 128_000)
        return Conversation(role, self.model, self.explorer, self.emit, self.prompts.render(prompt), window=window,
                            task_id=task_id)

    def _subplanner(self, task: Task) -> Subplanner:
        return Subplanner(task, self._conversation("subplanner", "subplanner", task.id), self.prompts, self.hub,
                          self.validator, self.emit, self.rules,
                          made=len(self.scheduler.children(task.id)))  # a resumed run never repeats a subtask id

    def _record_changes(self, event: Event) -> None:
        """A bus sink: the changes worth recording ask for a (batched) state write."""
        if event.type in ("task.created", "task.status", "handoff.received", "planner.answered"):
            self.state.mark(event.type)

    async def run(self, request: str | None, *, log_path: str = "", resume: bool = False,
                  confirm: Callable[[str], bool] | None = None, plan_only: bool = False,
                  early: list[Event] | None = None) -> Verdict:
        """Run ``request``, or resume the recorded run (``resume``; a run of the same request is
        resumed too, after ``confirm`` when given); ``plan_only``: plan, record, stop before any
        worker; ``early``: events to emit right after ``run.started`` (the preflight's). Raises
        ConfigError for what cannot be done."""
        stale = self.lock.acquire(self.bus.run_id)
        try:
            return await self._run(request, log_path, resume, confirm, [*(early or []), *(
                [RunWarning(code="lock.stale", message=stale)] if stale else [])], plan_only)
        finally:
            self.lock.release()

    async def reset(self, *, yes: bool, confirm: Callable[[str], bool] | None, show: Callable[[str], None]) -> bool:
        """``--reset`` (see `pipeline/reset.py`); False when the user declined."""
        stale = self.lock.acquire(self.bus.run_id)
        try:
            if stale:
                self.emit(RunWarning(code="lock.stale", message=stale))
            await self.hub.open()
            return await reset(self.hub, self.state, yes=yes, confirm=confirm, show=show, emit=self.emit)
        finally:
            self.lock.release()

    async def _run(self, request: str | None, log_path: str, resume: bool, confirm: Callable[[str], bool] | None,
                   early: list[Event], plan_only: bool = False) -> Verdict:
        started = time.monotonic()
        self.emit(RunStarted(request=request or "(resume)", repo=self.config.git_repo_url,
                             target_branch=self.config.git_main_branch, max_workers=self.config.max_workers,
                             log_path=log_path, max_tokens=self.budget.max_tokens,
                             max_cost_usd=self.budget.max_cost_usd, unpriced_models=self.budget.unpriced))
        for event in early:
            self.emit(event)
        self._announce_isolation()
        tip = await self.hub.open()
        if self.hub.repaired:
            self.emit(RunWarning(code="hub.repaired", message="removed what a killed run left in the hub: " + ", ".join(self.hub.repaired)))
        if tracked := own_paths_in(await self.hub.files(tip), self.own_paths):
            self.emit(ConfigTracked(paths=tracked[:50], message=(
                f"{self.config.git_repo_url} tracks {', '.join(tracked[:5])}{' ...' if len(tracked) > 5 else ''}: "
                "Longshot reads these as its own configuration when started in a clone of it; check that you "
                "trust them (workers may never change them)")))
        await check_target(self.hub.git, tip, self.config.git_repo_url, self.emit)
        stored = await self.state.load()
        resuming = decide(stored, request, resume=resume, confirm=confirm,
                          where=f"{self.state.ref} of {self.config.git_repo_url}")
        record = (stored if resuming and stored else RunState(
            run_id=self.bus.run_id, request=request or "", target_branch=self.config.git_main_branch,
            start_commit=tip, owner=owner_tag())).model_copy(update={"owner": owner_tag()})
        await clean_leftovers(self.provider, self.hub, record, self.state, self.emit)
        await self.features.open(record, resumed=resuming)
        recovered = await self._restore(record) if resuming else None
        stages = await self._stages(record, resumed=resuming)
        await self.state.flush(stages.capture, "run resumed" if resuming else "run started")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig, stages.driver)
        driver = stages.driver
        try:
            async with asyncio.TaskGroup() as tg:
                background = [tg.create_task(self.state.run(stages.capture)), tg.create_task(stages.monitor.run()),
                              tg.create_task(stages.reconciler.loop(driver.add_fixes)),
                              tg.create_task(self.features.run()), tg.create_task(self.watch.run())]
                merging = tg.create_task(self.merge_queue.run(driver.merged))
                self._adopt(recovered)
                try:
                    await driver.drive(record.request, tg, stages.capture, resumed=resuming, plan_only=plan_only)
                    if not self.signal and not plan_only:
                        await self.features.drain()  # every claim checked before the verdict
                    left = await driver.shutdown() if self.signal else []
                finally:
                    for job in background:
                        job.cancel()
                    self.merge_queue.close(now=bool(self.signal))
                if self.signal:
                    await asyncio.wait([merging], timeout=self.config.shutdown_grace)
                    merging.cancel()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if self.signal:
            return await self._interrupted(left, started, stages.capture)
        if plan_only:
            guess = estimate(len(self.scheduler.tasks), task_history(self.config.longshot_log_dir),
                             worker_price(self.config), self.budget.tokens)
            return Verdict(exit_code=preview(self.scheduler.tasks.values(), guess, self.emit, started=started,
                                             tokens=self.budget.tokens, cost_usd=self.budget.cost_usd), green=False)
        result = await self._finish(stages)
        await self.state.flush(lambda: stages.capture().model_copy(
            update={"finished": True, "exit_code": result.exit_code}), "run finished")
        self.emit(await self.hub.deliver(landed=bool(result.landed)))
        self.emit(RunFinished(exit_code=result.exit_code, green=result.green, landed=result.landed,
                              failed=result.failed, unlanded=result.unlanded, summary=result.summary,
                              duration_s=round(time.monotonic() - started, 3), tokens=self.budget.tokens,
                              cost_usd=round(self.budget.cost_usd, 6)))
        return result

    async def _restore(self, record: RunState) -> Recovered:
        found = await recover(record, self.hub, self.scheduler, self.ledger, self.budget, self.validator, self.emit)
        self.emit(RunResumed(landed=found.landed, adopted=found.adopted, redispatched=found.redispatched,
                             set_aside=found.set_aside))
        return found

    def _adopt(self, found: Recovered | None) -> None:
        """Results found by `recover`: recorded as fresh handoffs, or sent to the merge queue."""
        if found is None:
            return
        for task, handoff in found.results:
            self.ledger.handoff(task, handoff)
        for task, commit in found.requeue:
            self.merge_queue.submit(task, commit)

    async def _stages(self, record: RunState, *, resumed: bool) -> Stages:
        """The parts made from the run's record, in dependency order, each complete when built:
        the checks announced, the reconciler (restored), the main loop (its planning restored), the
        monitor (counting the main loop's slots), and how the record is captured from them all."""
        if not self.scheduler.tasks:  # a new run: branches of earlier runs keep their names
            out = await self.hub.git.run("for-each-ref", "--format=%(refname:short)", f"refs/heads/{self.hub.prefix}")
            self.validator.reserve(out.splitlines())
        await self._announce_checks(await self.hub.tip())
        config = self.config
        reconciler = Reconciler(
            self.provider, self.hub, self.checks, self.scheduler, self.validator,
            lambda: self._conversation("reconciler", "reconciler"), self.prompts, self.emit,
            start_commit=record.start_commit, timeout=config.check_timeout, prefix=config.git_branch_prefix,
            interval=config.reconciler_interval, red_interval=config.reconciler_red_interval)
        reconciler.restore(record.reconciler)
        driver = Driver(
            DriveOptions(max_workers=config.max_workers, planner_max_iterations=config.planner_max_iterations,
                         finalization_enabled=config.finalization_enabled,
                         finalization_max_attempts=config.finalization_max_attempts, grace=config.shutdown_grace,
                         rules=self.rules),
            self.scheduler, self.ledger, self.planner, self.merge_queue, self.runner, self.budget, self.state,
            self._subplanner, self.emit, self.crash, reconciler=reconciler, verify=self.features.verify,
            gated_checks=self.merge_queue.gate is not None and self.checks.known)
        if resumed:
            await driver.restore(record.planner, await self.hub.tip())
        monitor = Monitor(self.scheduler, self.runner, self.merge_queue, self.budget, self.emit,
                          interval=config.health_check_interval, stuck_after=config.worker_stuck_after,
                          max_workers=config.max_workers, busy=lambda: driver.busy)
        self.bus.add_sink(monitor)

        def capture_() -> RunState:
            return capture(record, self.scheduler, self.ledger, driver, reconciler, self.budget,
                           self.validator).model_copy(update=self.features.snapshot())
        return Stages(reconciler, driver, monitor, capture_)

    def _on_signal(self, sig: signal.Signals, driver: Driver) -> None:
        if self.signal is None:
            self.signal = sig.name
            self.emit(RunInterrupted(signal=sig.name))
            driver.stop()
            return
        self.emit(RunInterrupted(signal=sig.name, immediate=True))
        os._exit(130)  # the state written so far is enough to resume; nothing more is waited for

    async def _interrupted(self, left: list[str], started: float, capture: Capture) -> Verdict:
        await self.state.flush(capture, "interrupted")
        summary = (f"interrupted by {self.signal}; {len(left)} running task(s) stopped, their work kept on their "
                   "branches. Resume with: longshot --resume")
        self.emit(RunFinished(exit_code=130, green=False, summary=summary, tokens=self.budget.tokens,
                              duration_s=round(time.monotonic() - started, 3), cost_usd=round(self.budget.cost_usd, 6)))
        return Verdict(exit_code=130, green=False, summary=summary)

    async def _announce_checks(self, tip: str) -> None:
        if self.checks.explicit_none:
            self.emit(ChecksPlanned(source="none"))
            return
        plan = await self.checks.plan_for(tip)
        source = "configured" if self.checks.configured is not None else "detected"
        self.emit(ChecksPlanned(source=source if plan.checks else "none", commands=plan.commands,
                                ecosystems=plan.ecosystems, setup=bool(plan.setup)))
        if not plan.checks:
            self.emit(RunWarning(code="checks.none", message="NO CHECKS: no check commands are configured and none were detected on "
                                         f"{self.config.git_main_branch}, so nothing can tell a green branch from a red "
                                         "one; detection runs again on each sweep. Set CHECK_COMMANDS (or "
                                         "CHECK_COMMANDS=none to run without checks on purpose)."))
            if self.config.merge_gate == "on":
                self.emit(RunWarning(code="gate.no_checks", message="MERGE_GATE=on but no check commands are configured or detected: "
                                             "work lands unchecked until checks appear (set CHECK_COMMANDS)"))

    def _announce_isolation(self) -> None:
        if self.config.sandbox_isolation == "none":
            self.emit(RunWarning(code="isolation.none", message="SANDBOX_ISOLATION=none: model-written commands run on this machine "
                                         "without isolation, with your user's rights"))
        profile = self.provider.describe()
        for note in profile.adapted:
            self.emit(RunWarning(code="sandbox.adapted", message=note))
        self.emit(SandboxProfile(provider=self.config.sandbox_provider, isolation=self.config.sandbox_isolation,
                                 description=profile.description, weakened=profile.weakened))

    async def _finish(self, stages: Stages) -> Verdict:
        reconciler = stages.reconciler
        outcome = reconciler.last
        if outcome is None or outcome.commit != await self.hub.tip() or outcome.discarded:
            outcome = await reconciler.sweep(fix=False)
        plan = await self.checks.plan_for(outcome.commit)
        checks = outcome.results if plan.checks or self.checks.explicit_none else None
        for r in outcome.results:
            self.emit(CheckFinished(command=r.command, exit_code=r.exit_code, ok=r.ok,
                                    output_tail=r.output_tail[-SHOWN_OUTPUT:]))
        errors = list(stages.driver.errors)
        if self.budget.exhausted and not any(self.budget.exhausted in e for e in errors):
            errors.append(f"stopped early: {self.budget.exhausted} spent")
        preexisting = sorted((reconciler.preexisting or set()) & {f.signature for f in outcome.failures})
        tasks = list(self.scheduler.tasks.values())
        features = await self.features.judge(outcome, tasks, self.ledger.handoffs)
        return verdict(Account(tasks=tasks, checks=checks, features=features,
                               unlanded=dict(self.ledger.unlanded), errors=errors, preexisting=preexisting,
                               failures=[f.signature for f in outcome.failures], tokens=self.budget.tokens,
                               cost_usd=self.budget.cost_usd, unpriced=list(self.budget.unpriced)), self.emit)
