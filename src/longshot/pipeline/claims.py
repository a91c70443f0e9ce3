"""Claimed vs verified: a worker's ``complete`` checked against its task's acceptance.

When a worker hands off ``complete`` with a commit and its task's acceptance names a command
(in backticks, or a sentence that starts with one: ``python -m pytest tests/test_a.py
passes``), the command runs on the worker's own commit in a fresh sandbox (with the checks'
dependency set-up), one claim at a time, beside the run. Each check is a ``claim.checked``
event; one whose command fails is an *unverified claim*, with the command's output as the
evidence. The counts per role and model are kept in the durable state, and the report gives
the rate of unverified claims. The work still goes to the merge queue: the gate and the
feature ledger judge what lands; this judges what the worker said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pydantic import BaseModel, Field

from longshot.errors import LongshotError
from longshot.events import ClaimChecked, Emit, Event, HandoffReceived, LLMUsage, RunWarning
from longshot.hub import Hub
from longshot.pipeline.checks import SHOWN_OUTPUT, CheckSource, run_commands
from longshot.pipeline.proof import NOT_RUN, named_in
from longshot.sandboxes.base import SandboxProvider
from longshot.types import Task

MAX_COMMANDS = 3
"""Acceptance commands run per claim (the first ones named)."""


class ClaimCount(BaseModel):
    checked: int = 0
    unverified: int = 0


class ClaimState(BaseModel):
    """The counts in the durable run state: ``"<role>/<model>"`` -> checked and unverified."""

    counts: dict[str, ClaimCount] = Field(default_factory=dict)


class ClaimChecker:
    """A bus sink that queues completed handoffs, and the loop that checks them (`run`)."""

    def __init__(self, provider: SandboxProvider, hub: Hub, checks: CheckSource, emit: Emit,
                 task: Callable[[str], Task | None], *, timeout: float, prefix: str, default_model: str = "") -> None:
        self.provider = provider
        self.hub = hub
        self.checks = checks
        self.emit = emit
        self.task = task
        self.timeout = timeout
        self.prefix = prefix
        self.default_model = default_model
        self.counts: dict[str, ClaimCount] = {}
        self.models: dict[str, tuple[str, str]] = {}
        """Task id -> (role, model) of its last model request."""
        self._queue: asyncio.Queue[tuple[str, str, list[str]]] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()

    def snapshot(self) -> ClaimState:
        return ClaimState(counts={k: v.model_copy() for k, v in self.counts.items()})

    def restore(self, state: ClaimState) -> None:
        self.counts = {k: v.model_copy() for k, v in state.counts.items()}

    def __call__(self, event: Event) -> None:
        if isinstance(event, LLMUsage) and event.task_id and event.role in ("worker", "subplanner"):
            self.models[event.task_id] = (event.role, event.model)
        elif (isinstance(event, HandoffReceived) and event.task_id and event.handoff.status == "complete"
              and event.handoff.commit):
            task = self.task(event.task_id)
            commands = named_in(task.acceptance)[1][:MAX_COMMANDS] if task is not None else []
            if commands:
                self._idle.clear()
                self._queue.put_nowait((event.task_id, event.handoff.commit, commands))

    async def run(self) -> None:
        """Check queued claims one at a time (cancel to stop)."""
        while True:
            task_id, commit, commands = await self._queue.get()
            try:
                await self._check(task_id, commit, commands)
            except LongshotError as e:
                self.emit(RunWarning(code="claim.unchecked", task_id=task_id, message=f"the claim of {task_id} could not be checked: {e}"))
            finally:
                if self._queue.empty():
                    self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued claim is checked (the `run` loop must be running), at most
        ``timeout`` seconds: claims still queued then are left unchecked, and said so."""
        try:
            await asyncio.wait_for(self._idle.wait(), self.timeout)
        except TimeoutError:
            left = self._queue.qsize() + 1
            self.emit(RunWarning(code="claim.unchecked", message=f"{left} worker claim(s) were left unchecked: checking them took longer "
                                         f"than CHECK_TIMEOUT ({self.timeout:g}s) after the run's work ended"))

    async def _check(self, task_id: str, commit: str, commands: list[str]) -> None:
        plan = await self.checks.plan_for(commit)
        results = await run_commands(self.provider, self.hub, commit, plan, timeout=self.timeout,
                                     branch=f"{self.prefix}claims", label="claims", commands=commands)
        missing = next((r for r in results.values() if r.exit_code in NOT_RUN), None)
        if missing is not None:  # says nothing of the work: the command is not there to run
            self.emit(RunWarning(code="claim.unchecked", task_id=task_id, message=f"the claim of {task_id} could not be checked: "
                                                          f"`{missing.command}` could not run in a sandbox (exit "
                                                          f"{missing.exit_code}): {missing.output_tail[-200:]}"))
            return
        failed = next((r for r in results.values() if not r.ok), None)
        shown = failed or next(iter(results.values()))
        role, model = self.models.get(task_id, ("worker", self.default_model))
        count = self.counts.setdefault(f"{role}/{model}", ClaimCount())
        count.checked += 1
        count.unverified += failed is not None
        self.emit(ClaimChecked(task_id=task_id, verified=failed is None, role=role, model=model, commit=commit,
                               command=shown.command, exit_code=shown.exit_code,
                               evidence=shown.output_tail[-SHOWN_OUTPUT // 3:]))
