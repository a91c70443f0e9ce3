"""The merge queue against a real hub and a real remote."""

from __future__ import annotations

from types import SimpleNamespace

import asyncio
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from longshot.events import Event, MergeFailed, MergeLanded
from longshot.git import Git, trailers
from longshot.hub import Hub
from longshot.pipeline.gate import GateDecision
from longshot.pipeline.merge import MergeQueue
from longshot.testing.repos import git, make_remote
from longshot.types import MergeResult, Task, TaskStatus

FILES = {"a.txt": "one\ntwo\nthree\n", "c.txt": "c\n"}


@dataclass
class World:
    tmp: Path
    remote: Path
    hub: Hub
    scratch: Path
    base: str
    events: list[Event] = field(default_factory=list)
    results: list[tuple[str, MergeResult]] = field(default_factory=list)

    def queue(self, strategy: str = "rebase") -> MergeQueue:
        return MergeQueue(self.hub, strategy, self.events.append)

    def record(self, task: Task, result: MergeResult) -> None:
        """Where the queue's results go (given to `MergeQueue.run`)."""
        self.results.append((task.id, result))

    def remote_main(self) -> str:
        return git("rev-parse", "refs/heads/main", cwd=self.remote)

    def task_commit(self, task_id: str, files: dict[str, str], *, on: str | None = None,
                    subject: str | None = None) -> str:
        """A commit on ``on`` (default: the original base) pushed to the hub as worker/<id>."""
        git("checkout", "--quiet", "--detach", on or self.base, cwd=self.scratch)
        for path, text in files.items():
            target = self.scratch / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "--all", cwd=self.scratch)
        git("commit", "--quiet", "-m", f"{subject or 'Work on ' + task_id}\n\nLonger body.\n\nLongshot-Task: {task_id}",
            cwd=self.scratch)
        sha = git("rev-parse", "HEAD", cwd=self.scratch)
        git("push", "--quiet", str(self.hub.path), f"{sha}:refs/heads/worker/{task_id}", cwd=self.scratch)
        return sha

    def external_push(self, files: dict[str, str]) -> str:
        """Someone else advances the remote's main directly."""
        git("fetch", "--quiet", "origin", "+refs/heads/main:refs/remotes/origin/main", cwd=self.scratch)
        git("checkout", "--quiet", "--detach", "refs/remotes/origin/main", cwd=self.scratch)
        for path, text in files.items():
            (self.scratch / path).write_text(text)
        git("add", "--all", cwd=self.scratch)
        git("commit", "--quiet", "-m", "external change", cwd=self.scratch)
        sha = git("rev-parse", "HEAD", cwd=self.scratch)
        git("push", "--quiet", "origin", f"{sha}:refs/heads/main", cwd=self.scratch)
        return sha


def merging_task(task_id: str, priority: int = 5) -> Task:
    task = Task(id=task_id, description=f"task {task_id}", branch=f"worker/{task_id}", priority=priority)
    task.move(TaskStatus.RUNNING)
    task.move(TaskStatus.MERGING)
    return task


@pytest.fixture
async def world(tmp_path: Path) -> World:
    remote = make_remote(tmp_path, FILES)
    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=("Longshot", "longshot@localhost"))
    base = await hub.open()
    scratch = tmp_path / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=tmp_path)
    assert base == git("rev-parse", "HEAD", cwd=scratch)
    return World(tmp_path, remote, hub, scratch, base)


def parents(repo: Path, rev: str) -> list[str]:
    return git("rev-list", "--parents", "-n", "1", rev, cwd=repo).split()[1:]


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=repo, capture_output=True).returncode == 0


async def test_rebase_lands_independent_commits_linearly(world: World) -> None:
    c1 = world.task_commit("t1", {"a.txt": "ONE\ntwo\nthree\n"})
    c2 = world.task_commit("t2", {"b.txt": "new file\n"})
    queue = world.queue("rebase")
    tips = [world.remote_main()]

    r1 = await queue.land(merging_task("t1"), c1)
    assert r1.landed and r1.commit == c1, r1  # already on the tip: fast-forward to the task commit
    tips.append(world.remote_main())
    r2 = await queue.land(merging_task("t2"), c2)
    assert r2.landed and r2.commit is not None and r2.commit != c2
    tips.append(world.remote_main())

    assert tips == [world.base, c1, r2.commit]
    assert await world.hub.tip() == r2.commit
    assert parents(world.remote, r2.commit) == [c1]
    assert git("rev-list", "--min-parents=2", "refs/heads/main", cwd=world.remote) == ""  # linear
    for older, newer in zip(tips, tips[1:]):
        assert is_ancestor(world.remote, older, newer), "main moved backwards"
    # both changes are on main
    assert git("show", "main:a.txt", cwd=world.remote) == "ONE\ntwo\nthree"
    assert git("show", "main:b.txt", cwd=world.remote) == "new file"
    # each landing commit carries its task's trailer (and the task's message)
    found = await trailers(Git(world.remote), f"{world.base}..refs/heads/main")
    assert sorted(found) == sorted([(c1, "t1"), (r2.commit, "t2")])
    assert git("log", "-1", "--format=%s", r2.commit, cwd=world.remote) == "Work on t2"
    assert [type(e) for e in world.events] == [MergeLanded, MergeLanded]
    assert [e.task_id for e in world.events] == ["t1", "t2"]


async def test_conflict_is_reported_and_main_unchanged(world: World) -> None:
    c1 = world.task_commit("t1", {"a.txt": "one\nTWO from t1\nthree\n"})
    c2 = world.task_commit("t2", {"a.txt": "one\nTWO from t2\nthree\n", "b.txt": "b\n"})
    queue = world.queue("rebase")
    assert (await queue.land(merging_task("t1"), c1)).landed
    before = world.remote_main()

    r2 = await queue.land(merging_task("t2"), c2)
    assert not r2.landed
    assert r2.conflicts == ["a.txt"]
    assert "a.txt" in r2.reason
    assert world.remote_main() == before
    assert await world.hub.tip() == before
    failed = [e for e in world.events if isinstance(e, MergeFailed)]
    assert len(failed) == 1 and failed[0].conflicts == ["a.txt"] and failed[0].task_id == "t2"


async def test_external_advance_is_preserved(world: World) -> None:
    c1 = world.task_commit("t1", {"a.txt": "ONE\ntwo\nthree\n"})
    c2 = world.task_commit("t2", {"b.txt": "b\n"})
    queue = world.queue("rebase")
    assert (await queue.land(merging_task("t1"), c1)).landed

    external = world.external_push({"c.txt": "changed outside\n"})
    assert world.remote_main() == external
    assert await world.hub.tip() == c1  # the hub does not know yet

    r2 = await queue.land(merging_task("t2"), c2)
    assert r2.landed, r2.reason
    main = world.remote_main()
    assert main == r2.commit
    assert is_ancestor(world.remote, external, main), "the external commit was lost"
    assert parents(world.remote, main) == [external]
    assert git("show", "main:c.txt", cwd=world.remote) == "changed outside"
    assert git("show", "main:b.txt", cwd=world.remote) == "b"
    assert git("show", "main:a.txt", cwd=world.remote) == "ONE\ntwo\nthree"
    assert await world.hub.tip() == main


async def test_external_advance_conflicting_with_the_task(world: World) -> None:
    c1 = world.task_commit("t1", {"c.txt": "from the task\n"})
    external = world.external_push({"c.txt": "changed outside\n"})
    r1 = await world.queue("rebase").land(merging_task("t1"), c1)
    assert not r1.landed and r1.conflicts == ["c.txt"]
    assert world.remote_main() == external


async def test_merge_commit_strategy_makes_two_parent_commits(world: World) -> None:
    c1 = world.task_commit("t1", {"a.txt": "ONE\ntwo\nthree\n"}, subject="Capitalise one")
    c2 = world.task_commit("t2", {"b.txt": "b\n"})
    queue = world.queue("merge-commit")
    r1 = await queue.land(merging_task("t1"), c1)
    assert r1.landed and r1.commit != c1
    assert parents(world.remote, r1.commit) == [world.base, c1]
    subject = git("log", "-1", "--format=%s", r1.commit, cwd=world.remote)
    assert "worker/t1" in subject and "Capitalise one" in subject
    r2 = await queue.land(merging_task("t2"), c2)
    assert r2.landed
    assert parents(world.remote, r2.commit) == [r1.commit, c2]
    assert world.remote_main() == r2.commit
    values = sorted(v for _, v in await trailers(Git(world.remote), f"{world.base}..refs/heads/main"))
    assert values == ["t1", "t1", "t2", "t2"]  # the task commits and the merges both carry it


async def test_run_lands_in_priority_order_and_ignores_duplicates(world: World) -> None:
    low = merging_task("low", priority=9)
    high = merging_task("high", priority=1)
    mid = merging_task("mid", priority=5)
    c_low = world.task_commit("low", {"low.txt": "l\n"})
    c_high = world.task_commit("high", {"high.txt": "h\n"})
    c_mid = world.task_commit("mid", {"mid.txt": "m\n"})
    queue = world.queue("rebase")
    queue.submit(low, c_low)
    queue.submit(mid, c_mid)
    queue.submit(high, c_high)
    queue.submit(low, c_low)  # duplicate: ignored
    assert queue.depth == 3
    queue.close()
    await asyncio.wait_for(queue.run(world.record), 60)

    assert [task_id for task_id, _ in world.results] == ["high", "mid", "low"]
    assert all(r.landed for _, r in world.results)
    assert queue.depth == 0
    log = git("log", "--format=%s", f"{world.base}..refs/heads/main", cwd=world.remote).splitlines()
    assert log == ["Work on low", "Work on mid", "Work on high"]


async def test_run_reports_a_git_failure_and_continues(world: World) -> None:
    good = merging_task("good")
    bad = merging_task("bad", priority=1)
    c_good = world.task_commit("good", {"g.txt": "g\n"})
    queue = world.queue("rebase")
    queue.submit(bad, "0" * 40)  # a commit the hub does not have
    queue.submit(good, c_good)
    queue.close()
    await asyncio.wait_for(queue.run(world.record), 60)
    by_id = dict(world.results)
    assert [t for t, _ in world.results] == ["bad", "good"]
    assert not by_id["bad"].landed and by_id["bad"].reason
    assert by_id["good"].landed
    assert world.remote_main() == by_id["good"].commit


class PassingGate:
    """A gate that passes every candidate after a short check (so a batch is in flight meanwhile)."""

    flakes: list[str] = []
    source = SimpleNamespace(known=True)  # it has checks: batches are checked, not unlimited

    async def check(self, task_id: str, candidate: str, base: str, **_: object) -> GateDecision:
        await asyncio.sleep(0.05)
        return GateDecision(ok=True)


async def test_a_conflict_inside_a_batch_is_reported_against_the_tip_the_batch_left(world: World) -> None:
    """b conflicts with a, which is in the same batch and not landed yet: b's conflict (and so its
    conflict fix) must be about the tip with a on it, not the tip before the batch."""
    a = world.task_commit("a", {"a.txt": "one\ntwo\nthree\nfrom a\n"})
    b = world.task_commit("b", {"a.txt": "one\ntwo\nthree\nfrom b\n"})
    c = world.task_commit("c", {"c.txt": "c changed\n"})
    queue = MergeQueue(world.hub, "rebase", world.events.append, gate=PassingGate())  # type: ignore[arg-type]
    for task_id, sha in (("a", a), ("b", b), ("c", c)):
        queue.submit(merging_task(task_id), sha)
    queue.close()

    await queue.run(world.record)

    order = [(e.type, e.task_id) for e in world.events if isinstance(e, (MergeLanded, MergeFailed))]
    assert order == [("merge.landed", "a"), ("merge.landed", "c"), ("merge.failed", "b")]
    assert [r.conflicts for task_id, r in world.results if task_id == "b"] == [["a.txt"]]
    assert "from a" in git("show", "main:a.txt", cwd=world.remote)


async def test_without_a_gate_everything_queued_is_stacked_and_pushed_once(world: World) -> None:
    git("config", "core.logAllRefUpdates", "always", cwd=world.remote)  # one reflog entry per push
    tasks = [merging_task(f"s{i}") for i in range(12)]  # more than MERGE_BATCH: no check, no limit
    commits = [world.task_commit(t.id, {f"s{i}.txt": f"{i}\n"}) for i, t in enumerate(tasks)]
    queue = world.queue("rebase")
    assert queue.gate is None and not queue.checked
    for task, commit in zip(tasks, commits):
        queue.submit(task, commit)
    queue.close()
    await asyncio.wait_for(queue.run(world.record), 60)

    assert [t for t, r in world.results if r.landed] == [t.id for t in tasks]
    landed = [e for e in world.events if isinstance(e, MergeLanded)]
    assert [e.task_id for e in landed] == [t.id for t in tasks]  # one event per task, in order
    # one commit per task on main, each with its own trailer, in queue order
    found = await trailers(Git(world.remote), f"{world.base}..refs/heads/main")
    assert [value for _, value in reversed(found)] == [t.id for t in tasks]
    assert [e.commit for e in landed] == [c for c, _ in reversed(found)]
    pushes = (world.remote / "logs" / "refs" / "heads" / "main").read_text().splitlines()
    assert len(pushes) == 1 and world.remote_main() == landed[-1].commit


async def test_a_protected_change_in_a_batch_fails_alone_and_the_rest_land_without_it(world: World) -> None:
    tasks = [merging_task(n) for n in ("p1", "p2", "p3")]
    commits = [world.task_commit("p1", {"p1.txt": "1\n"}),
               world.task_commit("p2", {"tox.ini": "[tox]\n", "p2.txt": "2\n"}),
               world.task_commit("p3", {"p3.txt": "3\n"})]
    queue = world.queue("rebase")
    for task, commit in zip(tasks, commits):
        queue.submit(task, commit)
    queue.close()
    await asyncio.wait_for(queue.run(world.record), 60)

    results = dict(world.results)
    assert results["p1"].landed and results["p3"].landed and not results["p2"].landed
    refused = [e for e in world.events if isinstance(e, MergeFailed)]
    assert [(e.task_id, e.protected) for e in refused] == [("p2", ["tox.ini (CI or check configuration)"])]
    files = git("ls-tree", "--name-only", "refs/heads/main", cwd=world.remote).split()
    assert "p1.txt" in files and "p3.txt" in files and "tox.ini" not in files and "p2.txt" not in files
