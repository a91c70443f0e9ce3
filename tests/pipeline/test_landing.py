"""The landing path of the merge queue: line-set files merged as a union, no empty landings.

A real hub over a real remote; task commits made in a scratch clone and pushed to the hub.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.events import Event, MergeLanded
from longshot.hub import Hub
from longshot.pipeline.hotfiles import UnionFiles
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.threeway import merge_commits
from longshot.testing.repos import git
from longshot.types import MergeResult, Task, TaskStatus

from helpers import hub_and_scratch

FILES = {"INDEX.txt": "alpha\nbeta\n", "mod.py": "def f():\n    raise NotImplementedError\n\n\n"
                                                 "def g():\n    raise NotImplementedError\n", "logo.bin": "x\n"}


class Landing:
    def __init__(self, tmp: Path, hub: Hub, scratch: Path, base: str) -> None:
        self.tmp, self.hub, self.scratch, self.base = tmp, hub, scratch, base
        self.events: list[Event] = []
        self.results: dict[str, MergeResult] = {}

    def queue(self, union: list[str] | None = None) -> MergeQueue:
        return MergeQueue(self.hub, "rebase", self.events.append, union=UnionFiles(union or []))

    def record(self, task: Task, result: MergeResult) -> None:
        """Where the queue's results go (given to `MergeQueue.run`)."""
        self.results[task.id] = result

    def commit(self, task_id: str, files: dict[str, str], on: str | None = None) -> str:
        git("checkout", "--quiet", "--detach", on or self.base, cwd=self.scratch)
        for path, text in files.items():
            (self.scratch / path).write_text(text)
        git("add", "--all", cwd=self.scratch)
        git("commit", "--quiet", "--allow-empty", "-m", f"work on {task_id}\n\nLongshot-Task: {task_id}",
            cwd=self.scratch)
        sha = git("rev-parse", "HEAD", cwd=self.scratch)
        git("push", "--quiet", str(self.hub.path), f"{sha}:refs/heads/worker/{task_id}", cwd=self.scratch)
        return sha

    def show(self, path: str) -> str:
        return git("show", f"main:{path}", cwd=self.hub.path)


def merging(task_id: str, **fields: object) -> Task:
    task = Task(id=task_id, description=f"task {task_id}", branch=f"worker/{task_id}", **fields)  # type: ignore[arg-type]
    for status in (TaskStatus.RUNNING, TaskStatus.MERGING):
        task.move(status)
    return task


@pytest.fixture
async def world(tmp_path: Path) -> Landing:
    return Landing(tmp_path, *await hub_and_scratch(tmp_path, FILES))


APPEND_A = {"INDEX.txt": "alpha\nbeta\ngamma\n", "mod.py": "def f():\n    return 1\n\n\ndef g():\n    raise NotImplementedError\n"}
APPEND_B = {"INDEX.txt": "alpha\nbeta\ndelta\n", "mod.py": "def f():\n    raise NotImplementedError\n\n\ndef g():\n    return 2\n"}


async def test_a_conflict_confined_to_a_line_set_file_lands_as_a_union(world: Landing) -> None:
    """Both tasks append a line to INDEX.txt (a conflict for a three-way merge) and edit
    different functions of mod.py (merged cleanly): with INDEX.txt a line-set, both land."""
    a, b = world.commit("a", APPEND_A), world.commit("b", APPEND_B)
    queue = world.queue(union=["INDEX*"])
    assert (await queue.land(merging("a"), a)).landed
    result = await queue.land(merging("b"), b)
    assert result.landed, result.reason
    assert sorted(world.show("INDEX.txt").splitlines()) == ["alpha", "beta", "delta", "gamma"]
    assert "return 1" in world.show("mod.py") and "return 2" in world.show("mod.py")
    assert "<<<<<<<" not in world.show("INDEX.txt")


async def test_without_the_mark_the_same_change_conflicts_and_a_task_can_mark_it_itself(world: Landing) -> None:
    a, b = world.commit("a", APPEND_A), world.commit("b", APPEND_B)
    queue = world.queue()
    assert (await queue.land(merging("a"), a)).landed
    refused = await queue.land(merging("b"), b)
    assert not refused.landed and refused.conflicts == ["INDEX.txt"]
    marked = await queue.land(merging("b2", union_merge=["INDEX.txt"]), b)  # the planner's per-task mark
    assert marked.landed, marked.reason


async def test_a_union_file_does_not_excuse_a_conflict_elsewhere(world: Landing) -> None:
    """Only a conflict confined to line-set files is merged as a union: with a real conflict in
    mod.py too, the change conflicts (a conflict fix resolves both)."""
    a = world.commit("a", {**APPEND_A, "mod.py": "def f():\n    return 'a'\n"})
    b = world.commit("b", {**APPEND_B, "mod.py": "def f():\n    return 'b'\n"})
    queue = world.queue(union=["INDEX.txt"])
    assert (await queue.land(merging("a"), a)).landed
    result = await queue.land(merging("b"), b)
    assert not result.landed and result.conflicts == ["INDEX.txt", "mod.py"]


async def test_union_needs_both_sides_to_keep_the_file(world: Landing) -> None:
    """Deleted on one side and changed on the other is a real conflict, line-set or not."""
    a = world.commit("a", APPEND_A)
    git("checkout", "--quiet", "--detach", world.base, cwd=world.scratch)
    git("rm", "--quiet", "INDEX.txt", cwd=world.scratch)
    git("commit", "--quiet", "-m", "drop the index\n\nLongshot-Task: b", cwd=world.scratch)
    b = git("rev-parse", "HEAD", cwd=world.scratch)
    git("push", "--quiet", str(world.hub.path), f"{b}:refs/heads/worker/b", cwd=world.scratch)
    merged = await merge_commits(world.hub.git, a, b, lambda p: True)
    assert merged.conflicts == ["INDEX.txt"] and merged.unioned == []


async def test_work_already_on_the_target_is_recorded_not_landed_again(world: Landing) -> None:
    """A task whose change a successor landed already (finalization re-lands it): merged onto
    the tip it changes nothing, so no empty commit is made; it is marked already landed."""
    original = world.commit("orig", APPEND_A)
    successor = world.commit("succ", APPEND_A)  # the re-planned task did the same work
    queue = world.queue()
    assert (await queue.land(merging("succ"), successor)).landed
    tip = await world.hub.tip()
    result = await queue.land(merging("orig"), original)
    assert not result.landed and result.already_landed and "already on main" in result.reason
    assert await world.hub.tip() == tip
    assert [e.task_id for e in world.events if isinstance(e, MergeLanded)] == ["succ"]
    assert queue.stats.failed == 0


async def test_an_empty_change_in_a_batch_is_skipped_and_the_rest_land(world: Landing) -> None:
    """Queued together (no gate: one stack, one push), the duplicate is recorded as already
    landed and never becomes a commit on the stack."""
    first = world.commit("first", APPEND_A)
    dup = world.commit("dup", APPEND_A)
    other = world.commit("other", {"logo.bin": "y\n"})
    queue = world.queue()
    for task_id, commit in (("first", first), ("dup", dup), ("other", other)):
        queue.submit(merging(task_id), commit)
    queue.close()
    await queue.run(world.record)
    assert world.results["first"].landed and world.results["other"].landed
    assert world.results["dup"].already_landed and not world.results["dup"].landed
    subjects = git("log", "--format=%s", f"{world.base}..main", cwd=world.hub.path).splitlines()
    assert sorted(subjects) == ["work on first", "work on other"]
