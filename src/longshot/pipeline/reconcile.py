"""The reconciler: sweeps that find real breakage on the target branch and issue fix tasks.

A sweep scans the target tip for conflict markers and runs the checks on a fresh checkout
of it. Its result is thrown away when the branch moved meanwhile (it describes a tree that
is gone). Failures of the most urgent level present (markers, build, types, tests) go to
the reconciler role, whose answer becomes at most ``max_fixes`` fix tasks with priority 1.

What the model may not decide: fix-task ids and branches are allocated here; every fix
names the failures it is for, and a failure that already has an open fix, or has used up its
fix attempts, gets no other. A failure that was already there when the run started is
reported once and gets exactly one fix, and is never blamed on a task. When the model fails
or proposes nothing useful, one fix per failure is written from the failure itself.

Sweeps never overlap. Between sweeps the reconciler waits ``interval`` seconds, or
``red_interval`` from a red sweep until three green sweeps in a row.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from longshot.errors import LongshotError
from longshot.events import Emit, RunWarning, SweepFinished, SweepStarted
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource, run_commands
from longshot.pipeline.converse import Conversation
from longshot.pipeline.failures import Failure, failures_of, marker_failures, most_urgent
from longshot.pipeline.parse import TaskValidator, safe_scope_path, slugify
from longshot.pipeline.schedule import Scheduler
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxProvider
from longshot.types import ENDED, CheckResult, RawTask, Task

GREENS_TO_RELAX = 3
FIXES_PER_FAILURE = 2
"""Fix tasks one failure may get in a run (a pre-existing failure gets exactly one)."""


class ReconcilerState(BaseModel):
    """The reconciler's part of the durable state."""

    sweeps: int = 0
    claims: dict[str, str] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)
    preexisting: list[str] | None = None
    reported: list[str] = Field(default_factory=list)
    fix_counter: int = 0
    notes: list[str] = Field(default_factory=list)


@dataclass
class SweepOutcome:
    commit: str
    green: bool
    failures: list[Failure] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)
    fixes: list[Task] = field(default_factory=list)
    discarded: bool = False


class Reconciler:
    def __init__(self, provider: SandboxProvider, hub: Hub, checks: CheckSource, scheduler: Scheduler,
                 validator: TaskValidator, conversation: Callable[[], Conversation], prompts: Prompts, emit: Emit, *,
                 start_commit: str, timeout: float, prefix: str, interval: float = 300.0,
                 red_interval: float = 60.0, max_fixes: int = 5) -> None:
        self.provider = provider
        self.hub = hub
        self.checks = checks
        self.scheduler = scheduler
        self.validator = validator
        self.conversation = conversation
        self.prompts = prompts
        self.emit = emit
        self.start_commit = start_commit
        self.timeout = timeout
        self.prefix = prefix
        self.interval = interval
        self.red_interval = min(red_interval, interval)
        self.max_fixes = max_fixes
        self.sweeps = 0
        self.greens_needed = 0
        self.claims: dict[str, str] = {}
        """Failure signature -> the fix task issued for it most recently."""
        self.attempts: Counter[str] = Counter()
        self.preexisting: set[str] | None = None
        self.reported: set[str] = set()
        self.last: SweepOutcome | None = None
        self.notes: list[str] = []
        """For the planner: pre-existing failures, once each."""
        self._lock = asyncio.Lock()
        self.fix_counter = 0

    def take_notes(self) -> list[str]:
        """Pre-existing failures not yet told to the planner, once each."""
        notes, self.notes = self.notes, []
        return notes

    @property
    def delay(self) -> float:
        return self.red_interval if self.greens_needed > 0 else self.interval

    def snapshot(self) -> ReconcilerState:
        """What a resumed run needs: sweeps, claims, attempts, what was already failing."""
        return ReconcilerState(
            sweeps=self.sweeps, claims=dict(self.claims), attempts=dict(self.attempts),
            preexisting=None if self.preexisting is None else sorted(self.preexisting),
            reported=sorted(self.reported), fix_counter=self.fix_counter, notes=list(self.notes))

    def restore(self, saved: ReconcilerState) -> None:
        """Continue from a recorded run's reconciler."""
        self.sweeps = saved.sweeps
        self.claims.update(saved.claims)
        self.attempts.update(saved.attempts)
        self.preexisting = None if saved.preexisting is None else set(saved.preexisting)
        self.reported.update(saved.reported)
        self.fix_counter = saved.fix_counter
        self.notes[:0] = saved.notes

    async def loop(self, on_fixes: Callable[[list[Task]], None]) -> None:
        """Sweep forever at the current interval (cancelled when the run's main phase ends)."""
        while True:
            await asyncio.sleep(self.delay)
            outcome = await self.sweep()
            if outcome.fixes:
                on_fixes(outcome.fixes)

    async def sweep(self, *, fix: bool = True, final: bool = False) -> SweepOutcome:
        """Inspect the tip; issue fixes (``fix``). Pre-existing failures get theirs only when ``final``:
        until the planner's work has landed, it may well be what makes them pass."""
        async with self._lock:
            self.sweeps += 1
            commit = await self.hub.tip()
            self.emit(SweepStarted(sweep=self.sweeps, commit=commit))
            failures, results = await self._inspect(commit)
            if await self.hub.tip() != commit:
                self.emit(SweepFinished(sweep=self.sweeps, commit=commit, green=not failures, discarded=True,
                                        failures=[f.signature for f in failures]))
                return SweepOutcome(commit=commit, green=not failures, discarded=True)
            outcome = SweepOutcome(commit=commit, green=not failures, failures=failures, results=results)
            self.greens_needed = max(0, self.greens_needed - 1) if outcome.green else GREENS_TO_RELAX
            preexisting = await self._preexisting(commit, failures)
            fixable = [f for f in failures if final or f.signature not in preexisting]
            if fix and fixable:
                outcome.fixes = await self._fixes(commit, most_urgent(fixable), preexisting)
            self.emit(SweepFinished(sweep=self.sweeps, commit=commit, green=outcome.green,
                                    failures=[f.signature for f in failures], fixes=[t.id for t in outcome.fixes],
                                    preexisting=sorted(preexisting & {f.signature for f in failures})))
            self.last = outcome
            return outcome

    async def _inspect(self, commit: str) -> tuple[list[Failure], list[CheckResult]]:
        failures = await marker_failures(self.hub.git, commit)
        plan = await self.checks.plan_for(commit)
        if not plan.checks:
            return failures, []
        results = list((await run_commands(self.provider, self.hub, commit, plan, timeout=self.timeout,
                                           branch=f"{self.prefix}reconciler", label="reconciler",
                                           emit=self.emit)).values())
        for r in results:
            failures += failures_of(r)
        return failures, results

    async def _preexisting(self, commit: str, failures: list[Failure]) -> set[str]:
        """Signatures that were failing on the start commit (checked once, when first needed)."""
        if not failures:
            return self.preexisting or set()
        if self.preexisting is None:
            if commit == self.start_commit:
                self.preexisting = {f.signature for f in failures}
            else:
                self.preexisting = {f.signature for f in (await self._inspect(self.start_commit))[0]}
        for f in failures:
            if f.signature in self.preexisting and f.signature not in self.reported:
                self.reported.add(f.signature)
                self.notes.append(f"already failing on the target branch when the run started: {f.signature} "
                                  "(a fix task follows at the end unless your tasks make it pass)")
                self.emit(RunWarning(code="checks.preexisting", message=f"already failing when the run started (not caused by any task): "
                                             f"{f.signature}"))
        return self.preexisting

    def _open(self, signature: str) -> bool:
        task = self.scheduler.tasks.get(self.claims.get(signature, ""))
        return task is not None and task.status not in ENDED

    async def _fixes(self, commit: str, failures: list[Failure], preexisting: set[str]) -> list[Task]:
        limit = {f.signature: 1 if f.signature in preexisting else FIXES_PER_FAILURE for f in failures}
        wanted = [f for f in failures if not self._open(f.signature) and self.attempts[f.signature] < limit[f.signature]]
        if not wanted:
            return []
        labels = {f"F{i}": f for i, f in enumerate(wanted, 1)}
        raws = await self._ask(commit, labels, preexisting)
        fixes: list[Task] = []
        claimed: set[str] = set()
        for raw in raws:
            if len(fixes) >= self.max_fixes:
                break
            cited = [labels[x].signature for x in raw.fixes if x in labels]
            cited = cited or [f.signature for f in wanted if _mentions(raw, f)]
            cited = cited or [f.signature for f in wanted]  # cites nothing: it is for what is left
            cited = [s for s in dict.fromkeys(cited) if s not in claimed]
            if cited:
                claimed.update(cited)
                fixes.append(self._task(raw, [f for f in wanted if f.signature in cited]))
        for f in wanted:  # what the model left out still gets a fix, within the limit
            if f.signature not in claimed and len(fixes) < self.max_fixes:
                claimed.add(f.signature)
                fixes.append(self._task(None, [f]))
        return fixes

    async def _ask(self, commit: str, labels: dict[str, Failure], preexisting: set[str]) -> list[RawTask]:
        recent = await self.hub.git.run("log", "-n", "10", "--format=%h %s", commit)
        content = self.prompts.render(
            "reconciler_sweep", branch=self.hub.branch, commit=commit, recent=recent, max_tasks=self.max_fixes,
            failures=[{"label": k, "signature": f.signature, "command": f.command, "file": f.file, "detail": f.detail,
                       "preexisting": f.signature in preexisting} for k, f in labels.items()])
        try:
            answer = await self.conversation().ask(content, self.sweeps)
        except LongshotError as e:
            self.emit(RunWarning(code="reconciler.model_failed", message=f"the reconciler model failed ({e}); writing fix tasks from the failures"))
            return []
        return answer.tasks

    def _task(self, raw: RawTask | None, failures: list[Failure]) -> Task:
        while True:
            self.fix_counter += 1
            task_id = f"fix-{self.fix_counter:03d}"
            if task_id not in self.validator.known_ids:
                break
        cited = "\n\n".join(f"Failure {f.signature} (from `{f.command}`):\n```\n{f.detail}\n```" for f in failures)
        files = [f.file for f in failures if f.file]
        if raw is not None:
            description = f"{raw.description}\n\nThis fixes, on the target branch:\n{cited}"
            scope = [p for p in (safe_scope_path(s) for s in raw.scope) if p] or files
            acceptance = raw.acceptance
        else:
            description = f"Fix this breakage on the target branch; find and fix the cause.\n\n{cited}"
            scope, acceptance = files, ""
        acceptance = acceptance or "The cited failures are gone: " + "; ".join(f"`{f.command}` passes" for f in failures)
        if failures[0].level == "markers":
            description += ("\n\nResolve every conflict marker (<<<<<<<, =======, >>>>>>>) in these files, keeping "
                            "the intent of both sides.")
        branch = self.validator.free_branch(f"{self.prefix}{task_id}-{slugify(failures[0].signature)}")
        self.validator.known_ids.add(task_id)
        self.validator.known_branches.add(branch)
        for f in failures:
            self.claims[f.signature] = task_id
            self.attempts[f.signature] += 1
        feature = raw.feature if raw is not None and raw.feature in self.validator.features else None
        return Task(id=task_id, kind="fix", priority=1, description=description, scope=list(dict.fromkeys(scope)),
                    feature=feature,
                    acceptance=acceptance, branch=branch, fixes=[f.signature for f in failures])


def _mentions(raw: RawTask, failure: Failure) -> bool:
    """Whether a proposed task names the failure (its test or file) without citing its label."""
    text = f"{raw.description}\n{raw.acceptance}\n{' '.join(raw.scope)}"
    name = failure.signature.split(" ", 1)[1].split("::")[-1].strip("`")
    return bool(name) and re.search(re.escape(name), text) is not None
