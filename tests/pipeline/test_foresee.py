"""Early conflict warnings on real running checkouts: a worker told when the tip now conflicts
with its work (once per file), two running workers' clash told to the later one, merge_tip
bringing the tip in with markers, and the outcome when a warned task reaches the merge
queue. Sandboxes are real local ones (their checkouts peeked at in the hub); the tip moves
by real pushes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from longshot.events import (
    ConflictOutcome, ConflictPredicted, MemorySink, MergeFailed, MergeLanded, RunWarning, TipMerged, WorkerWarned,
)
from longshot.hub import Hub
from longshot.pipeline.foresee import ConflictWatch
from longshot.pipeline.hotfiles import UnionFiles
from longshot.sandboxes.base import Sandbox, SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import Task

from stagekit import open_hub, push

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

SHARED = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n"
FILES = {"shared.txt": SHARED, "other.txt": "other\n", "changes.log": "start\n"}


class Watching:
    """A conflict watch over real sandboxes that stay open for the test."""

    def __init__(self, tmp_path: Path, hub: Hub, stack: AsyncExitStack, interval: float = 0,
                 max_file_bytes: int = 1 << 20, **options: object) -> None:
        self.tmp_path = tmp_path
        self.hub = hub
        self.stack = stack
        self.sink = MemorySink()
        self.watch = ConflictWatch(hub, UnionFiles(["*.log"]), self.sink, interval=interval, **options)  # type: ignore[arg-type]
        self.provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(tasks_dir=tmp_path / "tasks",
                                                                                max_file_bytes=max_file_bytes))

    async def worker(self, task_id: str, writes: dict[str, str], scope: list[str] | None = None,
                     stack: AsyncExitStack | None = None) -> Sandbox:
        """A running worker on the current tip that has written ``writes`` so far (its sandbox
        open until ``stack``, by default the test's, closes)."""
        base = await self.hub.tip()
        spec = SandboxSpec(task_id=task_id, branch=f"worker/{task_id}", base_commit=base, hub=self.hub.path)
        sandbox = await (stack or self.stack).enter_async_context(self.provider.open(spec))
        for path, text in writes.items():
            await sandbox.write_file(path, text.encode())
        task = Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}",
                    scope=scope if scope is not None else list(writes))
        self.watch.started(task, sandbox, base)
        return sandbox

    async def land(self, files: dict[str, str], message: str = "landed elsewhere") -> str:
        push(self.hub, self.tmp_path, files, message)  # type: ignore[arg-type]
        return await self.hub.refresh()

    def warned(self) -> list[WorkerWarned]:
        return self.sink.of_type(WorkerWarned)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Watching]:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        yield Watching(tmp_path, hub, stack)


def edit(line: str, new: str) -> str:
    return SHARED.replace(line + "\n", new + "\n")


async def test_a_worker_is_warned_once_when_the_tip_now_conflicts_with_its_work(rig: Watching) -> None:
    await rig.worker("a", {"shared.txt": edit("two", "TWO from a")})
    await rig.watch.check()
    assert rig.sink.events == []  # nothing landed since it started
    await rig.land({"shared.txt": edit("two", "TWO from the tip")})
    await rig.watch.check()
    [predicted] = rig.sink.of_type(ConflictPredicted)
    assert (predicted.task_id, predicted.against, predicted.files) == ("a", "main", ["shared.txt"])
    assert predicted.lines == {"shared.txt": "2-6"}  # the marked region: line two, both sides
    [warned] = rig.warned()
    assert warned.files == ["shared.txt"] and warned.delivered
    [message] = rig.watch.messages("a")
    assert message.startswith("CONFLICT PREDICTED. Work landed on the target branch (main) since you started")
    assert "TWO from the tip" in message and "merge_tip" in message
    assert rig.watch.messages("a") == []  # given once
    await rig.watch.check()
    await rig.land({"shared.txt": edit("two", "TWO again from the tip")})
    await rig.watch.check()
    assert len(rig.warned()) == 1 and rig.watch.predicted == 1  # told already about this file


async def test_merge_tip_brings_the_tip_in_with_markers_and_ends_the_warnings(rig: Watching) -> None:
    sandbox = await rig.worker("a", {"shared.txt": edit("two", "TWO from a")})
    tip = await rig.land({"shared.txt": edit("two", "TWO from the tip"), "other.txt": "new other\n"})
    await rig.watch.check()
    text = await rig.watch.merge_tip("a", sandbox)
    assert f"Merged the target branch ({tip[:10]})" in text
    assert "CONFLICTS in: shared.txt" in text and "<<<<<<<" in text
    assert "other.txt" in text.split("files it changed: ")[1]
    merged = (await sandbox.read_file("shared.txt")).decode()
    assert "<<<<<<<" in merged and "TWO from the tip" in merged and "TWO from a" in merged
    assert (await sandbox.read_file("other.txt")).decode() == "new other\n"
    [event] = rig.sink.of_type(TipMerged)
    assert (event.task_id, event.tip, event.conflicts) == ("a", tip, ["shared.txt"])
    assert "has not moved" in await rig.watch.merge_tip("a", sandbox)
    await rig.watch.check()
    assert len(rig.warned()) == 1  # its work is now based on the tip: nothing new to predict
    await sandbox.write_file("shared.txt", edit("two", "TWO resolved").encode())
    await rig.land({"shared.txt": edit("two", "TWO changed once more")})
    await rig.watch.check()
    assert len(rig.warned()) == 2  # a new clash in the same file after it merged is told again
    assert await rig.watch.ended("a") == tip
    assert await rig.watch.ended("a") is None and rig.watch.messages("a") == []


async def test_a_clean_merge_tip_reports_no_conflicts(rig: Watching) -> None:
    sandbox = await rig.worker("a", {"shared.txt": edit("two", "TWO from a")})
    assert "has not moved since your work started" in await rig.watch.merge_tip("a", sandbox)
    await rig.land({"shared.txt": edit("six", "SIX from the tip")})
    text = await rig.watch.merge_tip("a", sandbox)
    assert "CONFLICTS" not in text and "files it changed: shared.txt" in text
    assert (await sandbox.read_file("shared.txt")).decode() == edit("two", "TWO from a").replace("six\n", "SIX from the tip\n")
    assert rig.sink.of_type(TipMerged)[0].conflicts == []


async def test_the_later_of_two_running_workers_is_told_of_their_clash(rig: Watching) -> None:
    await rig.worker("first", {"shared.txt": edit("four", "FOUR by first")})
    await rig.worker("second", {"shared.txt": edit("four", "FOUR by second")})
    await rig.worker("apart", {"other.txt": "mine\n"})
    await rig.watch.check()
    assert rig.warned() == []  # the landing pass does not compare workers
    await rig.watch.check(pairs=True)
    [predicted] = rig.sink.of_type(ConflictPredicted)
    assert (predicted.task_id, predicted.against) == ("second", "first")
    [message] = rig.watch.messages("second")
    assert "Task first, running at the same time as you, changes the same lines" in message
    assert "task first (running now) holds" in message and "Whichever of you lands second must merge" in message
    assert rig.watch.messages("first") == [] and rig.watch.messages("apart") == []


async def test_line_set_files_never_conflict(rig: Watching) -> None:
    await rig.worker("a", {"changes.log": "start\nentry a\n"})
    await rig.worker("b", {"changes.log": "start\nentry b\n"})
    await rig.land({"changes.log": "start\nentry tip\n"})
    await rig.watch.check()
    await rig.watch.check(pairs=True)
    assert rig.sink.events == []


async def test_no_pair_is_compared_past_max_pairs(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack, max_pairs=0, deliverable=False)
        await rig.worker("first", {"shared.txt": edit("four", "FOUR by first")})
        await rig.worker("second", {"shared.txt": edit("four", "FOUR by second")})
        await rig.watch.check(pairs=True)
        assert rig.warned() == []
        await rig.land({"shared.txt": edit("four", "FOUR from the tip")})
        await rig.watch.check()
        assert {w.task_id for w in rig.warned()} == {"first", "second"}
        assert not any(w.delivered for w in rig.warned())  # an external agent reads no messages mid-run


async def test_a_landing_far_from_a_workers_work_is_not_looked_at_until_the_periodic_pass(rig: Watching) -> None:
    await rig.worker("a", {"shared.txt": edit("two", "TWO from a")})
    await rig.watch.check()  # the first pass notes the tip
    await rig.land({"other.txt": "far away\n"})
    await rig.watch.check()
    assert rig.watch.live["a"].peek is None  # what landed touches neither its scope nor its changes
    await rig.watch.check(pairs=True)
    assert rig.watch.live["a"].peek is not None and rig.watch.live["a"].changed == {"shared.txt"}
    assert rig.sink.events == []


async def test_a_warned_tasks_landing_says_whether_the_conflict_was_avoided(rig: Watching) -> None:
    for name in ("a", "b", "c"):
        await rig.worker(name, {"shared.txt": edit("two", f"TWO from {name}")})
    await rig.land({"shared.txt": edit("two", "TWO from the tip")})
    await rig.watch.check()
    assert {w.task_id for w in rig.warned()} == {"a", "b", "c"}
    rig.watch(MergeLanded(task_id="a", commit="1" * 40, branch="worker/a"))
    rig.watch(MergeFailed(task_id="b", branch="worker/b", reason="checks failed"))  # not a conflict: no outcome yet
    rig.watch(MergeFailed(task_id="c", branch="worker/c", reason="conflict", conflicts=["shared.txt"]))
    rig.watch(MergeLanded(task_id="a", commit="2" * 40, branch="worker/a"))  # told once
    outcomes = [(o.task_id, o.avoided, o.files) for o in rig.sink.of_type(ConflictOutcome)]
    assert outcomes == [("a", True, ["shared.txt"]), ("c", False, ["shared.txt"])]
    assert set(rig.watch.warned) == {"b"}


async def test_a_sandbox_that_cannot_be_peeked_at_is_not_watched(rig: Watching) -> None:
    class Remote:  # a remote sandbox: it runs commands, but its checkout is not in the hub
        async def exec(self, command: str, timeout: float) -> None: ...

    task = Task(id="r", description="remote", branch="worker/r", scope=["shared.txt"])
    rig.watch.started(task, Remote(), await rig.hub.tip())  # type: ignore[arg-type]
    assert rig.watch.live == {}
    assert (await rig.watch.merge_tip("r", Remote())).startswith("error: merge_tip is not available")  # type: ignore[arg-type]
    assert await rig.watch.ended("r") is None


async def test_the_loop_checks_after_a_landing_without_waiting_for_the_interval(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack, interval=3600)
        await rig.worker("a", {"shared.txt": edit("two", "TWO from a")})
        loop = asyncio.create_task(rig.watch.run())
        tip = await rig.land({"shared.txt": edit("two", "TWO from the tip")})
        rig.watch(MergeLanded(task_id="x", commit=tip, branch="worker/x"))
        async with asyncio.timeout(60):
            while not rig.warned():
                await asyncio.sleep(0.05)
        loop.cancel()
        assert rig.warned()[0].task_id == "a"


async def test_only_max_checks_workers_are_looked_at_per_pass(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack, max_checks=2)
        for name in ("a", "b", "c"):
            await rig.worker(name, {"shared.txt": edit("two", f"TWO from {name}")})
        await rig.land({"shared.txt": edit("two", "TWO from the tip")})
        await rig.watch.check()
        assert [w.task_id for w in rig.warned()] == ["a", "b"]


async def test_a_checkout_that_breaks_a_snapshot_rule_is_skipped_and_merge_tip_says_why(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack, max_file_bytes=1000)
        sandbox = await rig.worker("big", {"shared.txt": edit("two", "TWO big"), "blob.bin": "x" * 5000})
        await rig.land({"shared.txt": edit("two", "TWO from the tip")})
        await rig.watch.check()
        await rig.watch.check(pairs=True)
        assert rig.sink.events == []  # nothing to compare: its checkout cannot be committed
        text = await rig.watch.merge_tip("big", sandbox)
        assert text.startswith("error: your checkout breaks a snapshot rule")
        assert rig.sink.of_type(TipMerged) == []


async def test_a_sandbox_lost_while_watched_is_a_warning_and_an_ended_worker_is_not_watched(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack)
        async with AsyncExitStack() as lost:
            await rig.worker("lost", {"shared.txt": edit("two", "TWO lost")}, stack=lost)
            await rig.worker("ended", {"shared.txt": edit("three", "THREE ended")}, stack=lost)
            await rig.watch.ended("ended")
        await rig.land({"shared.txt": edit("two", "TWO from the tip")})
        await rig.watch.check()
        [warning] = rig.sink.of_type(RunWarning)
        assert (warning.code, warning.task_id) == ("conflicts.unchecked", "lost")
        assert warning.message.startswith("could not check for conflicts: ")
        assert rig.warned() == []


async def test_warnings_wait_in_the_inbox_until_the_worker_takes_them_in_order(rig: Watching) -> None:
    await rig.worker("a", {"shared.txt": edit("two", "TWO from a"), "other.txt": "other by a\n"})
    await rig.worker("b", {"shared.txt": edit("two", "TWO from b")})
    await rig.land({"shared.txt": edit("two", "TWO from the tip")})
    await rig.watch.check()
    await rig.land({"other.txt": "other by the tip\n"})
    await rig.watch.check()
    await rig.watch.check(pairs=True)  # a and b clash too, but both were told of shared.txt already
    first, second = rig.watch.messages("a")
    assert "would conflict with it in shared.txt" in first and "would conflict with it in other.txt" in second
    assert len(rig.watch.messages("b")) == 1
    assert rig.watch.predicted == 3 and rig.watch.warned == {"a": {"shared.txt", "other.txt"}, "b": {"shared.txt"}}


async def test_the_loop_compares_running_workers_when_the_interval_passes_without_a_landing(tmp_path: Path) -> None:
    hub = await open_hub(tmp_path, FILES)
    async with AsyncExitStack() as stack:
        rig = Watching(tmp_path, hub, stack, interval=0.05)
        await rig.worker("first", {"shared.txt": edit("five", "FIVE by first")})
        await rig.worker("second", {"shared.txt": edit("five", "FIVE by second")})
        loop = asyncio.create_task(rig.watch.run())
        async with asyncio.timeout(60):
            while not rig.warned():
                await asyncio.sleep(0.05)
        loop.cancel()
        [predicted] = rig.sink.of_type(ConflictPredicted)
        assert (predicted.task_id, predicted.against) == ("second", "first")
        assert await hub.tip() == rig.watch.live["first"].base  # nothing landed meanwhile
