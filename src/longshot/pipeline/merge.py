"""The merge queue: one consumer lands completed task commits on the target branch.

With the gate on, queued changes are taken in batches (adaptive, up to ``MERGE_BATCH``):
they are stacked on the tip, one commit each, and the top of the stack is checked once;
if it passes, the target branch moves to it and every change in the batch has landed. A
failing batch is split in halves and each half settled the same way, down to single
changes, so one bad change does not hold up the others.

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
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Sequence

from longshot.crash import CrashPoints
from longshot.errors import GitError, LongshotError, PushRejected, policy_for
from longshot.events import Emit, MergeBatch, MergeFailed, MergeHealth, MergeLanded, NewSkippedTests
from longshot.git import Git
from longshot.hub import Hub
from longshot.pipeline.gate import Gate, GateDecision
from longshot.pipeline.hotfiles import UnionFiles
from longshot.ownfiles import own_refusals
from longshot.pipeline.stacking import History, Stacker
from longshot.pipeline.protect import (Protection, lost_tests, protected_changes, protected_many, raw_changes,
                                       raw_changes_many)
from longshot.pipeline.outcomes import REFUSAL
from longshot.pipeline.threeway import merge_commits
from longshot.types import MergeResult, Task

OnResult = Callable[[Task, MergeResult], None]


@dataclass
class MergeStats:
    """Running figures for `MergeHealth` events."""

    started: float = field(default_factory=time.monotonic)
    landed: int = 0
    failed: int = 0
    conflicts: int = 0
    waits: list[float] = field(default_factory=list)
    batches: list[tuple[int, int]] = field(default_factory=list)

    def record(self, result: MergeResult) -> None:
        self.landed += result.landed
        self.failed += not result.landed and not result.already_landed
        self.conflicts += bool(result.conflicts)

    def health(self, depth: int, flakes: list[str]) -> MergeHealth:
        waits = sorted(self.waits)

        def pick(q: float) -> float:
            return round(waits[min(len(waits) - 1, int(q * len(waits)))], 3) if waits else 0.0

        hours = max(1e-9, (time.monotonic() - self.started) / 3600)
        return MergeHealth(
            queue_depth=depth, landed=self.landed, failed=self.failed, conflicts=self.conflicts, flakes=len(flakes),
            p50_seconds_to_land=pick(0.5), p95_seconds_to_land=pick(0.95),
            mean_batch=round(sum(b for b, _ in self.batches) / len(self.batches), 2) if self.batches else 0.0,
            max_bisection_depth=max((d for _, d in self.batches), default=0),
            landed_per_hour=round(self.landed / hours, 1))


class AlreadyLanded(Exception):
    """The change, merged onto the tip, changes nothing: its work landed already."""


class MergeConflict(Exception):
    """merge-tree found conflicting changes in ``files``; ``tree`` holds them with markers."""

    def __init__(self, files: list[str], tree: str = "") -> None:
        self.files = files
        self.tree = tree
        super().__init__(", ".join(files))


class MergeQueue:
    """Lands (task, commit) pairs in priority order, then arrival order, one at a time."""

    def __init__(self, hub: Hub, strategy: str, emit: Emit, *, gate: Gate | None = None,
                 prefix: str = "worker/", max_batch: int = 8, crash: CrashPoints | None = None,
                 own_paths: Sequence[str] = (), union: UnionFiles | None = None) -> None:
        self.hub = hub
        self.own_paths = tuple(own_paths)
        """Besides `longshot.ownfiles.OWN_FILE`: files the settings make Longshot read; never landed."""
        self.union = union or UnionFiles()
        """Line-set files: a conflict confined to them is merged as a union (UNION_MERGE_FILES)."""
        self.crash = crash or CrashPoints()
        self.strategy = strategy
        self.emit = emit
        self.gate = gate
        self.prefix = prefix
        self.max_batch = max_batch
        self.batch_size = max_batch
        """Adaptive: grows by one after a batch passes, halves when one fails."""
        self.stats = MergeStats()
        self._submitted: dict[str, float] = {}
        self._queue: asyncio.PriorityQueue[tuple[float, int, Task | None, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._queued: set[str] = set()
        self._skips_reported: set[str] = set()
        self.history = History(hub.git)
        self._on_result: OnResult | None = None
        """Where results go while `run` consumes the queue."""

    @property
    def depth(self) -> int:
        return len(self._queued)

    def submit(self, task: Task, commit: str) -> None:
        if task.id in self._queued:
            return
        self._queued.add(task.id)
        self._submitted[task.id] = time.monotonic()
        self._queue.put_nowait((task.priority, next(self._seq), task, commit))

    def close(self, *, now: bool = False) -> None:
        """Stop after everything already queued has been handled, or (``now``) after the landing
        under way: what is still queued stays merging, for a resumed run to land."""
        self._queue.put_nowait((float("-inf") if now else float("inf"), next(self._seq), None, ""))

    async def run(self, on_result: OnResult) -> None:
        """Land what is submitted until `close`; each task's result goes to ``on_result``. It is
        given here, not at construction: its consumer (the ledger, through the main loop) sends
        this queue its work, so it is built after the queue."""
        self._on_result = on_result
        while True:
            _, _, task, commit = await self._queue.get()
            if task is None:
                return
            batch = [(task, commit)]
            limit = self.batch_size if self.checked else sys.maxsize
            while len(batch) < limit and not self._queue.empty():
                item = self._queue.get_nowait()
                if item[2] is None:  # closing: finish this batch first
                    self._queue.put_nowait(item)
                    break
                batch.append((item[2], item[3]))
            if len(batch) == 1:
                await self._one(task, commit)
            else:
                await self._batch(batch)

    @property
    def checked(self) -> bool:
        """Whether batches are checked (then their size adapts, up to ``max_batch``); unchecked
        batches take everything queued, as nothing can fail them but a conflict."""
        return self.gate is not None and self.gate.source.known

    async def _one(self, task: Task, commit: str) -> None:
        try:
            result = await self.land(task, commit)
        except LongshotError as e:  # git or the gate's sandbox failed: this task does not land
            result = self._failed(task, f"landing failed: {e}")
        self._done(task, result)

    def _done(self, task: Task, result: MergeResult) -> None:
        self._queued.discard(task.id)
        self.stats.record(result)
        self.emit(self.stats.health(self.depth, self.gate.flakes if self.gate else []))
        assert self._on_result is not None  # results come only from `run`
        self._on_result(task, result)

    async def _batch(self, items: list[tuple[Task, str]], depth: int = 0) -> None:
        """Land a batch; conflict fixes go one by one afterwards (each is checked against the
        tests both sides added, on its own tip)."""
        await self._stack([(t, c) for t, c in items if t.kind != "conflict-fix"], depth)
        for task, commit in items:
            if task.kind == "conflict-fix":
                await self._one(task, commit)

    async def _stack(self, items: list[tuple[Task, str]], depth: int) -> None:
        """Stack the changes on the tip, check the top once, land them all; bisect on failure.

        A change that conflicts with another change of the batch (not with the target branch)
        is tried again alone once the batch has settled: its conflict, if any is left, is then
        reported against the tip the batch left, which is where a conflict fix must start.
        """
        deferred: list[tuple[Task, str]] = []
        await self._settle(items, depth, deferred)
        for task, commit in deferred:
            if task.id in self._queued:  # not settled meanwhile (a failed batch retries every item)
                await self._one(task, commit)

    async def _settle(self, items: list[tuple[Task, str]], depth: int, deferred: list[tuple[Task, str]]) -> None:
        try:
            tip = await self.hub.tip()
            stack = await self._build_stack(items, tip, deferred)
            if not stack:
                return
            if len(stack) == 1:
                await self._one(stack[0][0], stack[0][1])
                return
            ids = [t.id for t, _, _ in stack]
            allowances = [a for t, _, _ in stack for a in t.allow_removed_tests]
            verdict = (await self.gate.check("+".join(ids)[:80], stack[-1][2], tip, allowances=allowances,
                                             landings=len(stack)) if self.gate else GateDecision(ok=True))
            self.emit(MergeBatch(size=len(stack), ok=verdict.ok, depth=depth, tasks=ids))
            self.stats.batches.append((len(stack), depth))
            if verdict.ok:
                self.crash.reached("merge.checked")
                await self.hub.push_tip(stack[-1][2], tip)
                await self.history.landed(stack[-1][2], len(stack))
                self.crash.reached("merge.landed")
                self.batch_size = min(self.max_batch, self.batch_size + 1)
                for task, _, candidate in stack:
                    self._landed(task, candidate)
                return
        except LongshotError as e:
            if isinstance(e, PushRejected):
                await self.hub.refresh()  # the remote moved under the batch
            # One by one, so a change git cannot handle fails alone, with its own reason.
            for task, commit in items:
                if task.id in self._queued:
                    await self._one(task, commit)
            return
        self.batch_size = max(2, self.batch_size // 2)  # at 1 it would never batch (and grow) again
        mid = len(stack) // 2
        await self._settle([(t, c) for t, c, _ in stack[:mid]], depth + 1, deferred)
        await self._settle([(t, c) for t, c, _ in stack[mid:]], depth + 1, deferred)

    async def _build_stack(self, items: list[tuple[Task, str]], tip: str,
                           deferred: list[tuple[Task, str]]) -> list[tuple[Task, str, str]]:
        """(task, its commit, the candidate on the stack) for each item that merges cleanly onto
        the one before and keeps off protected paths; the others have failed, or (conflicting
        only with an earlier change of the batch) wait in ``deferred``."""
        described = await self._describe([c for _, c in items])
        stack: list[tuple[Task, str, str]] = []
        base = tip
        async with await Stacker.open(self.hub.git, tip, await self.hub.tree(tip)) as stacker:
            for task, commit in items:
                try:
                    candidate = await self._build(task, commit, base, described.get(commit), stacker)
                except MergeConflict as c:
                    if base != tip:
                        deferred.append((task, commit))
                    else:
                        self._done(task, await self._conflict(task, commit, base, c))
                    continue
                except AlreadyLanded:
                    self._done(task, self._superseded(task))
                    continue
                stack.append((task, commit, candidate))
                base = candidate
        bases = [tip] + [candidate for _, _, candidate in stack]
        refused: set[str] = set()
        # One diff process for both checks of every change on the stack, against the one below it.
        changes = await raw_changes_many(self.hub.git, [(bases[i], c) for i, (_, _, c) in enumerate(stack)])
        for task, _, candidate in stack:  # Longshot's own files: whatever the task allows
            if own := own_refusals((p for *_, p in changes.get(candidate, [])), self.own_paths):
                refused.add(candidate)
                self._done(task, self._own(task, own))
        found = await protected_many(self.hub.git, [(bases[i], candidate, task.allow_removed_tests, task.allow_protected)
                                                    for i, (task, _, candidate) in enumerate(stack)
                                                    if candidate not in refused], changes)
        refused |= {c for c, p in found.items() if p}
        for task, _, candidate in stack:
            if candidate in found and (refusal := self._protected(task, found[candidate])):
                self._done(task, refusal)
        if not refused:
            return stack
        # What was stacked on a refused change holds it too: stack the rest again without it.
        return await self._build_stack([(t, c) for t, c, candidate in stack if candidate not in refused], tip,
                                       deferred)

    async def _describe(self, commits: list[str]) -> dict[str, tuple[list[str], str]]:
        """Each commit's parents and message, in one process."""
        if not commits:
            return {}
        out = await self.hub.git.run("log", "--no-walk=unsorted", "--format=%H%x00%P%x00%B%x00", *commits)
        fields = out.split("\0")
        return {fields[i].strip(): (fields[i + 1].split(), fields[i + 2].rstrip("\n"))
                for i in range(0, len(fields) - 2, 3)}

    def _landed(self, task: Task, commit: str) -> None:
        waited = time.monotonic() - self._submitted.pop(task.id, time.monotonic())
        self.stats.waits.append(waited)
        self.emit(MergeLanded(task_id=task.id, commit=commit, branch=task.branch, queue_depth=self.depth - 1,
                              seconds_to_land=round(waited, 3)))
        self._done(task, MergeResult(task_id=task.id, landed=True, commit=commit))

    async def land(self, task: Task, commit: str) -> MergeResult:
        policy = policy_for(PushRejected([], 1, ""))
        for _ in range(policy.max_attempts):
            tip = await self.hub.tip()
            try:
                new = await self._build(task, commit, tip)
            except MergeConflict as c:
                return await self._conflict(task, commit, tip, c)
            except AlreadyLanded:
                return self._superseded(task)
            changes = await raw_changes(self.hub.git, tip, new)  # one diff for both checks
            if own := own_refusals((p for *_, p in changes), self.own_paths):
                return self._own(task, own)
            protection = await protected_changes(self.hub.git, tip, new, task.allow_removed_tests,
                                                 allow_config=task.allow_protected, changes=changes)
            if refusal := self._protected(task, protection):
                return refusal
            if task.kind == "conflict-fix" and task.source_commit:
                lost = await lost_tests(self.hub.git, task.source_commit, tip, new)
                if lost:
                    return self._failed(task, "the conflict resolution drops tests one side added: " + ", ".join(lost))
            if self.gate is not None:
                verdict = await self.gate.check(task.id, new, tip, allowances=task.allow_removed_tests)
                if not verdict.ok:
                    return self._failed(task, verdict.reason)
            self.crash.reached("merge.checked")
            try:
                await self.hub.push_tip(new, tip)
                await self.history.landed(new, 1)
            except PushRejected:
                await self.hub.refresh()  # someone else moved it: rebuild on the new tip and check again
                continue
            self.crash.reached("merge.landed")
            waited = time.monotonic() - self._submitted.pop(task.id, time.monotonic())
            self.stats.waits.append(waited)
            self.emit(MergeLanded(task_id=task.id, commit=new, branch=task.branch, queue_depth=self.depth - 1,
                                  seconds_to_land=round(waited, 3)))
            return MergeResult(task_id=task.id, landed=True, commit=new)
        return self._failed(task, f"{self.hub.branch} kept moving on the remote; gave up after "
                                  f"{policy.max_attempts} attempts")

    def _protected(self, task: Task, protection: Protection) -> MergeResult | None:
        """Report new tests that carry skips; refuse a change that weakens protected ground."""
        if protection.new_skips and task.id not in self._skips_reported:
            self._skips_reported.add(task.id)
            self.emit(NewSkippedTests(task_id=task.id, tests=protection.new_skips[:50]))
        if not protection:
            return None
        return self._failed(task, protection.reason(), protected=protection.refused)

    def _own(self, task: Task, own: list[str]) -> MergeResult:
        """Refuse a change to Longshot's own configuration (`longshot.ownfiles`): no allowance opens it."""
        return self._failed(task, f"{REFUSAL}Longshot's own configuration is never changed by a run): "
                                  f"{', '.join(own)}. No allowance opens it: change the task so that it leaves "
                                  "these files alone", protected=own)

    def _failed(self, task: Task, reason: str, *, conflicts: list[str] | None = None,
                protected: list[str] | None = None) -> MergeResult:
        self.emit(MergeFailed(task_id=task.id, branch=task.branch, reason=reason, conflicts=conflicts or [],
                              protected=protected or []))
        return MergeResult(task_id=task.id, landed=False, reason=reason, conflicts=conflicts or [])

    async def _conflict(self, task: Task, commit: str, tip: str, c: MergeConflict) -> MergeResult:
        reason = f"merge conflict with {self.hub.branch} in {', '.join(c.files) or 'unknown files'}"
        if task.kind == "conflict-fix":
            reason = f"conflict retries exhausted on {', '.join(c.files)}"
        return self._failed(task, reason, conflicts=c.files)

    async def _build(self, task: Task, commit: str, tip: str, described: tuple[list[str], str] | None = None,
                     stacker: Stacker | None = None) -> str:
        """The commit to move the target branch to, per strategy (``described``: the commit's
        parents and message, when already known; ``stacker``: writes the commits of a stack,
        ``tip`` being the tip or a commit it wrote). Raises MergeConflict, or AlreadyLanded when
        the change, merged onto ``tip``, changes nothing there."""
        git = self.hub.git
        parents, message = described or (await self._describe([commit]))[commit]
        if self.strategy in ("rebase", "fast-forward") and parents[:1] == [tip]:
            trees = (await git.run("rev-parse", f"{tip}^{{tree}}", f"{commit}^{{tree}}")).split()
            self.hub.remember_tree(commit, trees[1])
            if trees[0] == trees[1]:
                raise AlreadyLanded()
            return commit
        ours = await stacker.stand_in(tip) if stacker else tip
        merged = await merge_commits(git, ours, commit, lambda path: self.union.covers(path, task))
        if merged.conflicts:
            raise MergeConflict(merged.conflicts, merged.tree)
        if merged.tree == ((stacker and stacker.tree(tip)) or await self.hub.tree(tip)):
            raise AlreadyLanded()
        on = [tip, commit] if self.strategy == "merge-commit" else [tip]
        if self.strategy == "merge-commit":
            subject, _, rest = message.partition("\n")
            message = f"Merge {task.branch}: {subject}\n{rest}"
        if stacker:
            new = stacker.commit(merged.tree, on, message)
        else:
            new = await git.run("commit-tree", merged.tree, *(arg for p in on for arg in ("-p", p)), "-m", message)
        self.hub.remember_tree(new, merged.tree)  # the next landing's tip, maybe: no rev-parse for its tree
        return new

    def _superseded(self, task: Task) -> MergeResult:
        """The change is on the target branch already (a successor landed it): nothing to land."""
        self._submitted.pop(task.id, None)
        return MergeResult(task_id=task.id, landed=False, already_landed=True,
                           reason=f"its changes are already on {self.hub.branch}: nothing left to land")

