"""Running one task: a sandbox on the right base, the harness, the snapshot.

Whatever way the worker ends (handoff, step limit, timeout, stuck, model failure, the run
being interrupted), what it wrote is snapshotted onto its branch in the hub so nothing is
lost; only a ``complete`` handoff with changes goes on to the merge queue (the
orchestrator decides that). A task dispatched again (a retry, or a resumed run) starts
from its own branch, so earlier work is carried on, never thrown away. When the sandbox
itself is lost (a remote node or container died, `SandboxLost`), its work is gone with it,
and the task starts again in a new sandbox as often as `RETRY_POLICY` allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from longshot.crash import CrashPoints
from longshot.errors import LLMError, SandboxError, backoff_delay, policy_for
from longshot.errors import SnapshotRefused
from longshot.events import Emit, RunWarning
from longshot.git import with_markers
from longshot.harnesses.base import Harness, HarnessResult
from longshot.hub import Hub
from longshot.pipeline.foresee import ConflictWatch
from longshot.pipeline.handoff import build_handoff, commit_message
from longshot.sandboxes.base import Measured, Measuring, Sandbox, SandboxProvider, SandboxSpec
from longshot.types import Handoff, Task


class TaskRunner:
    def __init__(self, hub: Hub, provider: SandboxProvider, harness: Harness, emit: Emit, *, timeout: float,
                 crash: CrashPoints | None = None, on_branch: Callable[[str], None] | None = None,
                 watch: ConflictWatch | None = None) -> None:
        self.hub = hub
        self.watch = watch
        """Early conflict warnings: told of each worker's sandbox while it runs (`pipeline/foresee.py`)."""
        self.provider = provider
        self.harness = harness
        self.emit = emit
        self.timeout = timeout
        self.crash = crash or CrashPoints()
        self.on_branch = on_branch
        """Told of every branch that got a new commit (so it is published with the run state)."""
        self.started: dict[str, float] = {}
        """Tasks a worker is on now, with when it started (monotonic)."""
        self._deadlines: dict[str, asyncio.Timeout] = {}
        self._why: dict[str, str] = {}

    def end(self, task_id: str, why: str) -> bool:
        """End a running worker now, as if its time were up; its work is salvaged as partial."""
        deadline = self._deadlines.get(task_id)
        if deadline is None:
            return False
        self._why[task_id] = why
        deadline.reschedule(asyncio.get_running_loop().time())
        return True

    async def _base(self, task: Task) -> tuple[str, bool]:
        """Where the worker starts, and whether that is the task's own branch: its own branch
        when it has one (a retry or a re-dispatch carries on its work); else the target tip, or
        for a conflict fix the tip with the change and its markers, or for a continuation the
        branch of the task it carries on."""
        heads = await self.hub.heads(task.branch, self.hub.branch, *([task.base_branch] if task.base_branch else []))
        if task.branch in heads:
            return heads[task.branch], True
        tip = heads.get(self.hub.branch) or await self.hub.tip()
        if task.source_commit:
            message = f"Merge {task.continue_from} onto {self.hub.branch}, conflict markers left to resolve"
            return await with_markers(self.hub.git, tip, task.source_commit, message), False
        if task.base_branch:
            if task.base_branch in heads:
                return heads[task.base_branch], False
            self.emit(RunWarning(code="task.base_missing", task_id=task.id, message=f"branch {task.base_branch} to continue from is gone; "
                                                          "starting from the target branch"))
        return tip, False

    async def run(self, task: Task) -> Handoff:
        started = time.monotonic()
        try:
            base, own = await self._base(task)
            attempt = 1
            while True:
                try:
                    result, commit, synced, measured = await self._attempt(task, base)
                    break
                except SandboxError as e:  # the sandbox itself failed: RETRY_POLICY says whether to start again
                    policy = policy_for(e)
                    if not policy.retry or attempt >= policy.max_attempts:
                        raise
                    self.emit(RunWarning(code="sandbox.retry", task_id=task.id, message=f"{e}; starting the task again in a new sandbox "
                                                                  f"(attempt {attempt + 1} of {policy.max_attempts})"))
                    await asyncio.sleep(backoff_delay(policy, attempt))
                    attempt += 1
        finally:
            self.started.pop(task.id, None)
        counted_from = synced or base  # a worker that merged the tip counts only its own changes
        if own:
            counted_from, commit = await self._carried(task, result, base, commit)
        if commit and self.on_branch:
            self.on_branch(task.branch)
        self.crash.reached("worker.result")
        duration_ms = int((time.monotonic() - started) * 1000)
        return await build_handoff(self.hub.git, task, result, counted_from, commit, duration_ms, measured)

    async def _attempt(self, task: Task, base: str) -> tuple[HarnessResult, str | None, str | None, Measured | None]:
        """One sandbox, the harness in it (WORKER_TIMEOUT), and the snapshot of what it wrote;
        with the last tip the worker merged into its checkout (merge_tip), if any, and what the
        snapshot measured of its commit (when the sandbox measures it)."""
        self.started[task.id] = time.monotonic()
        spec = SandboxSpec(task_id=task.id, branch=task.branch, base_commit=base, hub=self.hub.path)
        synced: str | None = None
        async with self.provider.open(spec) as sandbox:
            self.crash.reached("dispatch")
            if self.watch is not None:
                self.watch.started(task, sandbox, base)
            try:
                result = await self._work(task, sandbox)
            finally:
                synced = await self.watch.ended(task.id) if self.watch is not None else None
            try:
                commit = await sandbox.snapshot(commit_message(task, result))
            except SnapshotRefused as e:
                self.emit(RunWarning(code="snapshot.refused", task_id=task.id, message=str(e)))
                result = result.model_copy(update={"status": "failed", "summary": f"{e}. {result.summary}",
                                                   "concerns": [*result.concerns, str(e)]})
                commit = None
            measured = sandbox.measured if isinstance(sandbox, Measuring) else None
        if commit is not None and synced is not None:
            commit = await self._merged_with(task, commit, synced)
        return result, commit, synced, measured

    async def _merged_with(self, task: Task, commit: str, tip: str) -> str:
        """The worker merged ``tip`` into its checkout: its commit gets ``tip`` as a second parent,
        so the landing's three-way merge starts from there (what it resolved stays resolved)."""
        git = self.hub.git
        tree, message = (await git.run("log", "-1", "--format=%T%x00%B", commit)).split("\0", 1)
        merged = await git.run("commit-tree", tree, "-p", commit, "-p", tip, "-m", message)
        await git.update_ref(f"refs/heads/{task.branch}", merged, commit)
        return merged

    async def _carried(self, task: Task, result: HarnessResult, base: str, commit: str | None) -> tuple[str, str | None]:
        """A task that started from its own branch: the work earlier attempts left there is its
        result too, even when this attempt added nothing (then a commit with this attempt's
        message goes on top), and its figures count everything the branch adds to the target."""
        git = self.hub.git
        tip = await self.hub.tip()
        if await git.is_ancestor(base, tip):  # that earlier work has landed already
            return base, commit
        if commit is None:
            tree = await git.run("rev-parse", f"{base}^{{tree}}")
            commit = await git.run("commit-tree", tree, "-p", base, "-m", commit_message(task, result))
            await git.update_ref(f"refs/heads/{task.branch}", commit, base)
        return await git.run("merge-base", tip, commit), commit

    async def _work(self, task: Task, sandbox: Sandbox) -> HarnessResult:
        deadline = asyncio.timeout(self.timeout)
        self._deadlines[task.id] = deadline
        try:
            async with deadline:
                return await self.harness.run(task, sandbox)
        except TimeoutError:
            why = self._why.pop(task.id, "") or f"the worker timed out after {self.timeout:g}s"
            return HarnessResult(status="partial", summary=why,
                                 concerns=[f"{why}; its work so far is on the branch"])
        except (LLMError, SandboxError) as e:
            if isinstance(e, SandboxError) and policy_for(e).retry:
                raise  # the sandbox is gone with the work in it (a lost node): `run` starts again
            self.emit(RunWarning(code="worker.failed", task_id=task.id, message=f"worker failed: {e}"))
            return HarnessResult(status="failed", summary=f"the worker failed: {e}")
        except asyncio.CancelledError:
            # The run is stopping: keep what the worker wrote on its branch, then stop.
            await self._salvage(task, sandbox)
            raise
        finally:
            self._deadlines.pop(task.id, None)

    async def _salvage(self, task: Task, sandbox: Sandbox) -> None:
        note = HarnessResult(status="partial", summary="The run was interrupted; this is the work so far.")
        try:
            if await sandbox.snapshot(commit_message(task, note, status="interrupted")) and self.on_branch:
                self.on_branch(task.branch)
        except (SandboxError, OSError) as e:
            self.emit(RunWarning(code="salvage.failed", task_id=task.id, message=f"could not salvage the interrupted work: {e}"))
