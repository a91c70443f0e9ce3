"""The merge queue: one consumer lands completed task commits on the target branch.

Serial by construction (a single asyncio task reads a priority queue), so no lock is
needed. Landing commits are built in the hub without a checkout (`git merge-tree
--write-tree`, `git commit-tree`), so a failed merge leaves no dirty state behind. The
target branch moves only by a fast-forward-only push to the remote followed by a
compare-and-swap of the hub ref; when the remote moved, the commit is rebuilt on the new
tip. Nothing is ever force-pushed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from longshot.errors import GitError, PushRejected, policy_for
from longshot.events import Emit, MergeFailed, MergeLanded
from longshot.hub import Hub
from longshot.types import MergeResult, Task

OnResult = Callable[[Task, MergeResult], None]


class MergeConflict(Exception):
    """merge-tree found conflicting changes in ``files``."""

    def __init__(self, files: list[str]) -> None:
        self.files = files
        super().__init__(", ".join(files))


class MergeQueue:
    """Lands (task, commit) pairs in priority order, then arrival order, one at a time."""

    def __init__(self, hub: Hub, strategy: str, emit: Emit, on_result: OnResult) -> None:
        self.hub = hub
        self.strategy = strategy
        self.emit = emit
        self.on_result = on_result
        self._queue: asyncio.PriorityQueue[tuple[float, int, Task | None, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._queued: set[str] = set()

    @property
    def depth(self) -> int:
        return len(self._queued)

    def submit(self, task: Task, commit: str) -> None:
        if task.id in self._queued:
            return
        self._queued.add(task.id)
        self._queue.put_nowait((task.priority, next(self._seq), task, commit))

    def close(self) -> None:
        """Stop after everything already queued has been handled."""
        self._queue.put_nowait((float("inf"), next(self._seq), None, ""))

    async def run(self) -> None:
        while True:
            _, _, task, commit = await self._queue.get()
            if task is None:
                return
            try:
                result = await self.land(task, commit)
            except GitError as e:
                result = MergeResult(task_id=task.id, landed=False, reason=f"git failed while landing: {e}")
                self.emit(MergeFailed(task_id=task.id, branch=task.branch, reason=result.reason))
            self._queued.discard(task.id)
            self.on_result(task, result)

    async def land(self, task: Task, commit: str) -> MergeResult:
        policy = policy_for(PushRejected([], 1, ""))
        for _ in range(policy.max_attempts):
            tip = await self.hub.tip()
            try:
                new = await self._build(task, commit, tip)
            except MergeConflict as c:
                reason = f"merge conflict with {self.hub.branch} in {', '.join(c.files) or 'unknown files'}"
                self.emit(MergeFailed(task_id=task.id, branch=task.branch, reason=reason, conflicts=c.files))
                return MergeResult(task_id=task.id, landed=False, reason=reason, conflicts=c.files)
            try:
                await self.hub.push_tip(new, tip)
            except PushRejected:
                await self.hub.refresh()
                continue
            self.emit(MergeLanded(task_id=task.id, commit=new, branch=task.branch))
            return MergeResult(task_id=task.id, landed=True, commit=new)
        reason = f"{self.hub.branch} kept moving on the remote; gave up after {policy.max_attempts} attempts"
        self.emit(MergeFailed(task_id=task.id, branch=task.branch, reason=reason))
        return MergeResult(task_id=task.id, landed=False, reason=reason)

    async def _build(self, task: Task, commit: str, tip: str) -> str:
        """The commit to move the target branch to, per strategy."""
        git = self.hub.git
        parent = await git.rev_parse(f"{commit}^")
        if self.strategy in ("rebase", "fast-forward") and parent == tip:
            return commit
        code, out, err = await git.run_full("merge-tree", "--write-tree", "--name-only", "--no-messages", tip, commit)
        lines = out.splitlines()
        if code == 1:
            raise MergeConflict(sorted({line for line in lines[1:] if line.strip()}))
        if code != 0 or not lines:
            raise GitError(["merge-tree", tip, commit], code, err)
        tree = lines[0].strip()
        message = await git.run("log", "-1", "--format=%B", commit)
        if self.strategy == "merge-commit":
            subject, _, rest = message.partition("\n")
            message = f"Merge {task.branch}: {subject}\n{rest}"
            return await git.run("commit-tree", tree, "-p", tip, "-p", commit, "-m", message)
        return await git.run("commit-tree", tree, "-p", tip, "-m", message)
