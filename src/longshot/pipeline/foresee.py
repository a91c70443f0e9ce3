"""Early conflict warnings: running workers checked against the tip and against each other.

After every landing (and every ``CONFLICT_CHECK_INTERVAL`` seconds against the other running
workers) each running worker's current work is snapshotted without disturbing it
(`Mergeable.peek`: a scratch index, a commit nothing refers to) and merged with the target
branch's tip by ``git merge-tree`` in the hub, with no checkout. A conflict is a prediction
(`ConflictPredicted`): the worker that will land later (against the tip: the running one;
between two running workers: the one that started later) is told which file, which lines
and what the other side now holds, as a user message appended to its conversation between
two steps (`Desk.messages`, `WorkerWarned`). The worker can then call ``merge_tip``
(`merge_tip` here, `TipMerged`): the tip is merged into its checkout, conflict markers left
in place for it to resolve. When it hands off, its commit gets the merged tip as a second
parent, so the merge queue's three-way merge starts from there and does not see the
resolved conflict again. When a warned task reaches the merge queue, `ConflictOutcome` says
whether the conflict was avoided.

Kept cheap: a worker whose work and tip are what they were at its last check is skipped; at
most ``max_checks`` workers per pass and ``max_pairs`` pairs (only pairs whose changes share
a file that is not a line-set) per periodic pass; several landings during a pass make one
more pass, not one each. Remote sandboxes (no `Mergeable`) are not watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from longshot.errors import LongshotError
from longshot.events import (
    ConflictOutcome, ConflictPredicted, Emit, Event, MergeFailed, MergeLanded, RunWarning, TipMerged, WorkerWarned,
)
from longshot.hub import Hub
from longshot.pipeline.hotfiles import UnionFiles
from longshot.pipeline.threeway import Merged, conflict_regions, merge_commits
from longshot.sandboxes.base import Mergeable, Peek, Sandbox
from longshot.types import Task

ADVICE = ("Call the merge_tip tool now: it merges the target branch into your checkout and leaves conflict "
          "markers (<<<<<<< the target branch, =======, >>>>>>> yours) in the files that conflict. Resolve "
          "each so that both sides' intent is kept and no marker line is left, check your work, then go on.")


@dataclass
class Live:
    """A running worker the watch can look at."""

    task: Task
    sandbox: Mergeable
    base: str
    started: float
    synced: list[str] = field(default_factory=list)
    """Tips merged into the checkout by merge_tip, oldest first."""
    checked: tuple[str, str] = ("", "")
    """(tip, tree of its work) at its last check against the tip."""
    peek: Peek | None = None
    changed: set[str] = field(default_factory=set)
    """Files its work changes (as of ``peek``)."""
    warned: set[str] = field(default_factory=set)
    """Files it was warned about since it last merged the tip."""
    inbox: list[str] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def since(self) -> str:
        """What its work is based on now: the last tip it merged, else its base."""
        return self.synced[-1] if self.synced else self.base


class ConflictWatch:
    """Predicts conflicts of running workers and tells the one that lands later (a bus sink)."""

    def __init__(self, hub: Hub, union: UnionFiles, emit: Emit, *, interval: float, deliverable: bool = True,
                 max_checks: int = 16, max_pairs: int = 16) -> None:
        self.hub = hub
        self.union = union
        self.emit = emit
        self.interval = interval
        self.deliverable = deliverable
        """Whether the harness reads messages mid-run (the builtin one does; external agents do not)."""
        self.max_checks = max_checks
        self.max_pairs = max_pairs
        self.live: dict[str, Live] = {}
        self.warned: dict[str, set[str]] = {}
        """Task id -> every file it was warned about (kept until its landing says if it was avoided)."""
        self.predicted = 0
        self._wake = asyncio.Event()
        self._tip = ""
        """The tip at the last pass (what landed since is what the next pass looks for)."""

    # -- the running workers ------------------------------------------------------------

    def started(self, task: Task, sandbox: Sandbox, base: str) -> None:
        if isinstance(sandbox, Mergeable):
            self.live[task.id] = Live(task, sandbox, base, time.monotonic())

    async def ended(self, task_id: str) -> str | None:
        """The worker stopped (before its snapshot): stop watching; the last tip it merged, if any."""
        live = self.live.get(task_id)
        if live is None:
            return None
        async with live.lock:  # no peek of a sandbox that is being snapshotted or removed
            self.live.pop(task_id, None)
        return live.synced[-1] if live.synced else None

    def messages(self, task_id: str) -> list[str]:
        live = self.live.get(task_id)
        if live is None or not live.inbox:
            return []
        taken, live.inbox = live.inbox, []
        return taken

    def __call__(self, event: Event) -> None:
        """Bus sink: a landing moves the tip (check again); a warned task's landing is an outcome."""
        if isinstance(event, MergeLanded):
            self._wake.set()
        if isinstance(event, (MergeLanded, MergeFailed)) and event.task_id in self.warned:
            conflicted = isinstance(event, MergeFailed) and bool(event.conflicts)
            if isinstance(event, MergeLanded) or conflicted:
                files = sorted(self.warned.pop(event.task_id or ""))
                self.emit(ConflictOutcome(task_id=event.task_id, avoided=not conflicted, files=files))

    # -- the tool ----------------------------------------------------------------------

    async def merge_tip(self, task_id: str, sandbox: Sandbox) -> str:
        live = self.live.get(task_id)
        if live is None:
            return "error: merge_tip is not available for this sandbox; the merge queue merges your work when you hand off"
        async with live.lock:
            tip = await self.hub.tip()
            if tip == live.since:
                return "The target branch has not moved since your work started (or you last merged it): nothing to merge."
            peek = await live.sandbox.peek([live.base, *live.synced[-1:]], f"work of {task_id} before merge_tip")
            if peek is None:
                return "error: your checkout breaks a snapshot rule (see the handoff rules); fix that first"
            merged = await merge_commits(self.hub.git, tip, peek.commit, lambda p: self.union.covers(p, live.task))
            await live.sandbox.put_tree(merged.tree)
            changed = (await self.hub.git.run("diff-tree", "-r", "--name-only", peek.tree, merged.tree)).split()
            live.synced.append(tip)
            live.warned.clear()
        self.emit(TipMerged(task_id=task_id, tip=tip, conflicts=merged.conflicts))
        text = f"Merged the target branch ({tip[:10]}) into your checkout; files it changed: {', '.join(changed[:20]) or 'none'}."
        if merged.conflicts:
            text += (f" CONFLICTS in: {', '.join(merged.conflicts)}. In each, the lines between <<<<<<< and ======= "
                     "are the target branch's, those between ======= and >>>>>>> are yours: edit the file so it keeps "
                     "both sides' intent and no marker line is left, then run the checks.")
        return text

    # -- the checks --------------------------------------------------------------------

    async def run(self) -> None:
        """Check after each landing, and against each other every ``interval`` seconds."""
        while True:
            pairs = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval or None)
            if not self._wake.is_set():
                pairs = True  # the interval passed with no landing
            self._wake.clear()
            try:
                await self.check(pairs=pairs)
            except LongshotError as e:  # a prediction is advice: the run goes on without it
                self.emit(RunWarning(code="conflicts.unchecked", message=f"conflict prediction skipped: {e}"[:500]))

    async def check(self, *, pairs: bool = False) -> None:
        """One pass: every running worker against the tip, and (``pairs``) against each other.

        After a landing only workers that may touch what landed are peeked at (their scope or
        their changes so far name a file it changed); the periodic pass looks at every one."""
        tip = await self.hub.tip()
        landed: set[str] | None = None
        if not pairs and self._tip and self._tip != tip:
            out = await self.hub.git.run("diff-tree", "-r", "--name-only", self._tip, tip)
            landed = {p for p in out.split("\n") if p}
        self._tip = tip
        looked: list[Live] = []
        for live in list(self.live.values())[: self.max_checks]:
            if tip == live.since and not pairs:
                continue  # nothing landed since its work started (or since it merged the tip)
            if landed is not None and not {p for p in landed if not self.union.covers(p, live.task)} & (
                    set(live.task.scope) | live.changed):
                continue  # what just landed is far from its work (the periodic pass still looks)
            try:
                if await self._look(live) is None:
                    continue
                looked.append(live)
                if tip != live.since:
                    await self._against_tip(live, tip)
            except (LongshotError, OSError) as e:
                if live.task.id in self.live:  # else it ended meanwhile (its sandbox is gone): nothing to predict
                    self.emit(RunWarning(code="conflicts.unchecked", task_id=live.task.id,
                                         message=f"could not check for conflicts: {e}"[:500]))
        if pairs:
            await self._pairs(looked)

    async def _look(self, live: Live) -> Peek | None:
        async with live.lock:
            if live.task.id not in self.live:
                return None
            peek = await live.sandbox.peek([live.base, *live.synced[-1:]], f"work of {live.task.id} so far")
        if peek is not None and (live.peek is None or peek.tree != live.peek.tree):
            out = await self.hub.git.run("diff-tree", "-r", "--name-only", live.since, peek.commit)
            live.changed = {p for p in out.split("\n") if p and not self.union.covers(p, live.task)}
        live.peek = peek
        return peek

    async def _against_tip(self, live: Live, tip: str) -> None:
        assert live.peek is not None
        if (tip, live.peek.tree) == live.checked:
            return  # nothing new on either side since its last check
        live.checked = (tip, live.peek.tree)
        merged = await merge_commits(self.hub.git, tip, live.peek.commit, lambda p: self.union.covers(p, live.task))
        if merged.conflicts:
            await self._warn(live, merged, self.hub.branch, "the target branch now holds",
                             f"Work landed on the target branch ({self.hub.branch}) since you started")

    async def _pairs(self, looked: list[Live]) -> None:
        tried = 0
        for i, a in enumerate(looked):
            for b in looked[i + 1:]:
                if tried >= self.max_pairs or a.peek is None or b.peek is None or not a.changed & b.changed:
                    continue
                tried += 1
                later, first = (a, b) if a.started >= b.started else (b, a)
                assert first.peek is not None and later.peek is not None
                try:
                    merged = await merge_commits(self.hub.git, first.peek.commit, later.peek.commit,
                                                 lambda p: self.union.covers(p, later.task))
                except LongshotError:
                    continue
                if merged.conflicts:
                    await self._warn(later, merged, first.task.id, f"task {first.task.id} (running now) holds",
                                     f"Task {first.task.id}, running at the same time as you, changes the same lines")

    async def _warn(self, live: Live, merged: Merged, against: str, holder: str, opening: str) -> None:
        new = [f for f in merged.conflicts if f not in live.warned]
        if not new:
            return  # told already: no message per landing for the same files
        self.predicted += 1
        regions = {f: await conflict_regions(self.hub.git, merged.tree, f) for f in merged.conflicts}
        lines = {f: ", ".join(r.split(":", 1)[0].removeprefix("lines ") for r in rs) for f, rs in regions.items()}
        self.emit(ConflictPredicted(task_id=live.task.id, against=against, files=merged.conflicts, lines=lines))
        live.warned |= set(merged.conflicts)
        self.warned.setdefault(live.task.id, set()).update(merged.conflicts)
        detail = "\n".join(f"{f}, {r.replace('the target branch now holds', holder)}"
                           for f, rs in regions.items() for r in rs)
        advice = ADVICE if against == self.hub.branch else (
            "Whichever of you lands second must merge. Keep your change to those lines small; if "
            f"{against} lands first you will be told, and merge_tip then brings its work into your checkout.")
        live.inbox.append(f"CONFLICT PREDICTED. {opening}, and your current changes would conflict with it in "
                          f"{', '.join(merged.conflicts)}.\n{detail}\n{advice}")
        self.emit(WorkerWarned(task_id=live.task.id, files=merged.conflicts, delivered=self.deliverable))
