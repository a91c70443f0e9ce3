"""Running one task: a sandbox on the current target tip, the harness, the snapshot.

Whatever way the worker ends (handoff, step limit, timeout, model failure), what it wrote
is snapshotted onto its branch in the hub so nothing is lost; only a ``complete`` handoff
with changes goes on to the merge queue (the orchestrator decides that). When the sandbox
itself is lost (a remote node or container died, `SandboxLost`), its work is gone with it,
and the task starts again in a new sandbox as often as `RETRY_POLICY` allows.
"""

from __future__ import annotations

import asyncio
import time

from longshot.errors import LLMError, SandboxError, backoff_delay, policy_for
from longshot.events import Emit, RunWarning
from longshot.harnesses.base import Harness, HarnessResult
from longshot.hub import Hub
from longshot.pipeline.handoff import build_handoff, commit_message
from longshot.pipeline.merge import with_markers
from longshot.sandboxes.base import SandboxProvider, SandboxSpec
from longshot.sandboxes.snapshot import SnapshotRefused
from longshot.types import Handoff, Task


class TaskRunner:
    def __init__(self, hub: Hub, provider: SandboxProvider, harness: Harness, emit: Emit, *, timeout: float) -> None:
        self.hub = hub
        self.provider = provider
        self.harness = harness
        self.emit = emit
        self.timeout = timeout

    async def _base(self, task: Task) -> str:
        """The target tip; for a conflict fix, the tip with the change and its markers; for a
        continuation, the branch of the task it carries on."""
        if task.source_commit:
            message = f"Merge {task.continue_from} onto {self.hub.branch}, conflict markers left to resolve"
            return await with_markers(self.hub.git, await self.hub.tip(), task.source_commit, message)
        if task.base_branch:
            wip = await self.hub.git.rev_parse(f"refs/heads/{task.base_branch}")
            if wip is not None:
                return wip
            self.emit(RunWarning(task_id=task.id, message=f"branch {task.base_branch} to continue from is gone; "
                                                          "starting from the target branch"))
        return await self.hub.tip()

    async def run(self, task: Task) -> Handoff:
        started = time.monotonic()
        base = await self._base(task)
        attempt = 1
        while True:
            try:
                result, commit = await self._attempt(task, base)
                break
            except SandboxError as e:  # the sandbox itself failed: RETRY_POLICY says whether to start again
                policy = policy_for(e)
                if not policy.retry or attempt >= policy.max_attempts:
                    raise
                self.emit(RunWarning(task_id=task.id, message=f"{e}; starting the task again in a new sandbox "
                                                              f"(attempt {attempt + 1} of {policy.max_attempts})"))
                await asyncio.sleep(backoff_delay(policy, attempt))
                attempt += 1
        duration_ms = int((time.monotonic() - started) * 1000)
        return await build_handoff(self.hub.git, task, result, base, commit, duration_ms)

    async def _attempt(self, task: Task, base: str) -> tuple[HarnessResult, str | None]:
        """One sandbox, the harness in it (WORKER_TIMEOUT), and the snapshot of what it wrote."""
        spec = SandboxSpec(task_id=task.id, branch=task.branch, base_commit=base, hub=self.hub.path)
        async with self.provider.open(spec) as sandbox:
            try:
                async with asyncio.timeout(self.timeout):
                    result = await self.harness.run(task, sandbox)
            except TimeoutError:
                result = HarnessResult(status="partial", summary=f"the worker timed out after {self.timeout:g}s",
                                       concerns=["WORKER_TIMEOUT reached; work so far is on the branch"])
            except (LLMError, SandboxError) as e:
                if isinstance(e, SandboxError) and policy_for(e).retry:
                    raise  # the sandbox is gone with the work in it (a lost node): `run` starts again
                self.emit(RunWarning(task_id=task.id, message=f"worker failed: {e}"))
                result = HarnessResult(status="failed", summary=f"the worker failed: {e}")
            try:
                commit = await sandbox.snapshot(commit_message(task, result))
            except SnapshotRefused as e:
                self.emit(RunWarning(task_id=task.id, message=str(e)))
                result = result.model_copy(update={"status": "failed", "summary": f"{e}. {result.summary}",
                                                   "concerns": [*result.concerns, str(e)]})
                commit = None
        return result, commit
