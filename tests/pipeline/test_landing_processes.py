"""How many git processes a landing costs, counted with git's own trace (trace2) against a
real hub and remote: nothing the hub already knows is asked of git again."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.hub import Hub
from longshot.pipeline.merge import MergeQueue
from longshot.testing.gittrace import GitTrace
from longshot.testing.repos import git, make_remote
from longshot.types import Task, TaskStatus


def task_commit(scratch: Path, hub: Hub, base: str, task_id: str, path: str) -> tuple[Task, str]:
    git("checkout", "--quiet", "--detach", base, cwd=scratch)
    (scratch / path).write_text(f"{task_id}\n")
    git("add", "--all", cwd=scratch)
    git("commit", "--quiet", "-m", f"Work on {task_id}\n\nLongshot-Task: {task_id}", cwd=scratch)
    sha = git("rev-parse", "HEAD", cwd=scratch)
    git("push", "--quiet", str(hub.path), f"{sha}:refs/heads/worker/{task_id}", cwd=scratch)
    task = Task(id=task_id, description=f"task {task_id}", branch=f"worker/{task_id}")
    task.move(TaskStatus.RUNNING)
    task.move(TaskStatus.MERGING)
    return task, sha


async def test_a_landing_after_a_landing_reads_no_ref_and_moves_the_hub_in_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = GitTrace(tmp_path / "trace")
    monkeypatch.setenv("HOME", str(trace.home))  # before any Git is built: it reads the environment once
    remote = make_remote(tmp_path, {"a.txt": "a\n"})
    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=("Longshot", "longshot@localhost"))
    base = await hub.open()
    scratch = tmp_path / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=tmp_path)
    queue = MergeQueue(hub, "rebase", lambda _: None)
    changes = [task_commit(scratch, hub, base, f"t{i}", f"f{i}.txt") for i in range(3)]

    for i, (task, commit) in enumerate(changes):
        trace.mark()
        result = await queue.land(task, commit)
        assert result.landed, result
        counts = trace.counts()
        assert counts["update-ref"] == 1  # the hub's branch and its remote-tracking ref: one transaction
        assert counts["diff"] == 1  # the own-files and protected-paths checks read one diff
        if i:  # the tip and its tree are the ones the last landing wrote
            assert counts["rev-parse"] == 0, counts
        assert git("rev-parse", "refs/heads/main", cwd=remote) == git("rev-parse", "refs/heads/main", cwd=hub.path)
        assert git("rev-parse", "refs/remotes/origin/main", cwd=hub.path) == result.commit
        assert await hub.tip() == result.commit
    files = git("ls-tree", "--name-only", "refs/heads/main", cwd=remote).split()
    assert files == ["a.txt", "f0.txt", "f1.txt", "f2.txt"]
