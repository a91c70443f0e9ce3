"""Group commit in the merge queue: what arrives while a landing is being pushed lands together.

A real hub over a real remote whose ``receive-pack`` waits for the test's word
(``remote.origin.receivepack``), so branches can arrive while a push is in flight, as
workers finishing during a landing hand theirs over. Every git process is recorded with
trace2 (``trace2.eventTarget`` in a global config of a HOME of the test's own), to count them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from longshot.events import Event, MergeBatch, MergeFailed, MergeLanded
from longshot.git import Git, trailers
from longshot.hub import Hub
from longshot.pipeline import stacking
from longshot.pipeline.merge import MergeQueue
from longshot.testing.repos import git
from longshot.types import MergeResult, Task, TaskStatus

from helpers import hub_and_scratch, push_work

FILES = {"a.txt": "one\ntwo\nthree\n", "b.txt": "bee\n"}


def merging(task_id: str) -> Task:
    task = Task(id=task_id, description=f"task {task_id}", branch=f"worker/{task_id}")
    for status in (TaskStatus.RUNNING, TaskStatus.MERGING):
        task.move(status)
    return task


def held_pushes(tmp: Path, hub: Hub) -> tuple[Path, Path]:
    """Make every push from the hub wait until ``go`` exists; each one leaves a file in ``started``."""
    started, go = tmp / "started", tmp / "go"
    started.mkdir()
    script = tmp / "held-receive-pack"
    script.write_text(f'#!/bin/sh\nmktemp "{started}/push.XXXXXX" >/dev/null\n'
                      f'while [ ! -e "{go}" ]; do sleep 0.01; done\nexec git receive-pack "$@"\n')
    script.chmod(0o755)
    git("config", "remote.origin.receivepack", str(script), cwd=hub.path)
    return started, go


def processes(trace: Path) -> list[str]:
    """The git subcommands the hub ran, in order (from its trace2 event log)."""
    names = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "cmd_name" and "/" not in event.get("sid", "/"):  # not a child of another
            names.append(event["name"])
    return names


async def until(condition: object, what: str) -> None:
    for _ in range(3000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting until {what}")


async def test_what_arrives_during_a_push_lands_in_one_push_in_order_and_a_conflict_fails_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "trace.json"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".gitconfig").write_text(f"[trace2]\n\teventTarget = {trace}\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # trace2 is only read from a global config
    hub, scratch, base = await hub_and_scratch(tmp_path, FILES)
    remote = Path(hub.url)
    git("config", "core.logAllRefUpdates", "always", cwd=remote)  # one reflog entry per push
    started, go = held_pushes(tmp_path, hub)
    commits = {
        "first": push_work(hub, scratch, "first", {"a.txt": "one\nfirst\nthree\n"}, base),
        "b1": push_work(hub, scratch, "b1", {"n1.txt": "1\n"}, base),
        "clash": push_work(hub, scratch, "clash", {"a.txt": "one\nclash\nthree\n"}, base),  # with first
        "b2": push_work(hub, scratch, "b2", {"b.txt": "bee by b2\n"}, base),
        "clash2": push_work(hub, scratch, "clash2", {"b.txt": "bee by clash2\n"}, base),  # with b2
        "b3": push_work(hub, scratch, "b3", {"sub/n3.txt": "3\n"}, base),
    }
    events: list[Event] = []
    results: list[tuple[str, MergeResult]] = []

    def record(task: Task, result: MergeResult) -> None:
        results.append((task.id, result))

    queue = MergeQueue(hub, "rebase", events.append)
    trace.unlink()  # from here on: only what the queue runs
    running = asyncio.create_task(queue.run(record))
    queue.submit(merging("first"), commits["first"])
    await until(lambda: any(started.iterdir()), "the first push is in flight")
    for task_id in ("b1", "clash", "b2", "clash2", "b3"):  # workers finishing while it is pushed
        queue.submit(merging(task_id), commits[task_id])
    go.touch()
    queue.close()
    await asyncio.wait_for(running, 120)

    landed = [task_id for task_id, r in results if r.landed]
    assert landed == ["first", "b1", "b2", "b3"]  # in the order they arrived
    failed = {task_id: r for task_id, r in results if not r.landed}
    assert failed.keys() == {"clash", "clash2"} and len(results) == 6  # each reported once
    assert failed["clash"].conflicts == ["a.txt"] and failed["clash2"].conflicts == ["b.txt"]
    # two pushes: the first landing alone, then everything that arrived meanwhile on one stack
    assert len(list(started.iterdir())) == 2
    pushes = (remote / "logs" / "refs" / "heads" / "main").read_text().splitlines()
    assert len(pushes) == 2
    stacks = [e for e in events if isinstance(e, MergeBatch)]
    assert [(e.size, e.tasks) for e in stacks] == [(3, ["b1", "b2", "b3"])]
    # one commit per landed task on main, each with its own trailer, in order; nothing else
    found = await trailers(Git(remote), f"{base}..refs/heads/main")
    assert [value for _, value in reversed(found)] == landed
    assert len(git("rev-list", f"{base}..refs/heads/main", cwd=remote).split()) == 4
    assert [e.commit for e in events if isinstance(e, MergeLanded)] == [c for c, _ in reversed(found)]
    assert [e.task_id for e in events if isinstance(e, MergeFailed)] == ["clash", "clash2"]
    tree = git("ls-tree", "-r", "--name-only", "refs/heads/main", cwd=remote).split()
    assert {"n1.txt", "sub/n3.txt"} <= set(tree)
    assert git("show", "main:b.txt", cwd=remote) == "bee by b2"
    # the stack's commits were written by one process, not a commit-tree per change
    ran = processes(trace)
    assert ran.count("commit-tree") == 0, ran  # (the first landing, alone, is its own commit: on the tip)
    assert ran.count("hash-object") == 1, ran
    assert ran.count("push") == 2, ran


async def test_a_change_built_on_another_of_the_same_stack_merges_onto_it(tmp_path: Path) -> None:
    """With merge commits, a continuation (on its predecessor's commit) merges cleanly onto the
    stacked merge of that predecessor: the stack's merges see the same history as one by one."""
    hub, scratch, base = await hub_and_scratch(tmp_path, FILES)
    remote = Path(hub.url)
    git("config", "core.logAllRefUpdates", "always", cwd=remote)
    first = push_work(hub, scratch, "first", {"a.txt": "one\nfirst\nthree\n"}, base)
    other = push_work(hub, scratch, "other", {"b.txt": "other\n"}, base)
    then = push_work(hub, scratch, "then", {"a.txt": "one\nfirst, then more\nthree\n"}, first)
    events: list[Event] = []
    results: list[tuple[str, MergeResult]] = []

    def record(task: Task, result: MergeResult) -> None:
        results.append((task.id, result))

    queue = MergeQueue(hub, "merge-commit", events.append)
    for task_id, sha in (("first", first), ("other", other), ("then", then)):
        queue.submit(merging(task_id), sha)
    queue.close()
    await asyncio.wait_for(queue.run(record), 120)

    assert [(task_id, r.landed) for task_id, r in results] == [("first", True), ("other", True), ("then", True)]
    assert [(e.size, e.ok) for e in events if isinstance(e, MergeBatch)] == [(3, True)]
    assert len((remote / "logs" / "refs" / "heads" / "main").read_text().splitlines()) == 1
    assert git("show", "main:a.txt", cwd=remote) == "one\nfirst, then more\nthree"
    merges = git("rev-list", "--first-parent", f"{base}..refs/heads/main", cwd=remote).split()
    assert [git("rev-list", "--parents", "-n", "1", m, cwd=remote).split()[2] for m in reversed(merges)] == \
        [first, other, then]  # each merge's second parent is the task's own commit
    subjects = git("log", "--format=%s", f"{base}..refs/heads/main", cwd=remote)
    assert "stand-in" not in subjects  # what the stack merged onto never reaches the target


async def test_what_lands_joins_the_hubs_commit_graph_so_merge_bases_stay_cheap(tmp_path: Path) -> None:
    """Changes made on an old tip meet the target far below its tip; the landed commits are
    added to the hub's commit-graph every History.EVERY landings, so that walk reads the graph."""
    hub, scratch, base = await hub_and_scratch(tmp_path, FILES)
    events: list[Event] = []
    results: list[tuple[str, MergeResult]] = []

    def record(task: Task, result: MergeResult) -> None:
        results.append((task.id, result))

    queue = MergeQueue(hub, "rebase", events.append)
    n = queue.history.EVERY + 3
    for i in range(n):
        queue.submit(merging(f"t{i}"), push_work(hub, scratch, f"t{i}", {f"t{i}.txt": f"{i}\n"}, base))
    queue.close()
    await asyncio.wait_for(queue.run(record), 120)

    assert sum(r.landed for _, r in results) == n
    graphs = hub.path / "objects" / "info" / "commit-graphs"
    assert (graphs / "commit-graph-chain").is_file()
    tip = git("rev-parse", "refs/heads/main", cwd=hub.path)
    # the graph holds the landed tip and every commit below it
    listed = git("-c", "core.commitGraph=true", "commit-graph", "verify", cwd=hub.path)
    assert "error" not in listed.lower()
    assert len(git("rev-list", tip, cwd=hub.path).split()) == n + 1
    assert queue.history.pending == 0


async def test_a_commit_graph_write_cut_short_does_not_stop_the_next_run_from_writing_one(tmp_path: Path) -> None:
    """A run killed while adding to the graph leaves git's lock behind; opening the hub removes it."""
    hub, _, _ = await hub_and_scratch(tmp_path, FILES)
    stale = hub.path / "objects" / "info" / "commit-graphs" / "commit-graph-chain.lock"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("")
    await Hub(hub.path, url=hub.url, branch="main", author=("Longshot", "longshot@localhost")).open()
    assert not stale.exists()
    code, _, err = await hub.git.run_full("commit-graph", "write", "--split", "--reachable", "--no-progress")
    assert code == 0, err


async def test_a_killed_processs_stack_scratch_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    """The files a stack hands to git live in a scratch directory named by the process; one left
    by a process that is gone (killed mid-stack) is removed by the next stack, a live one is not."""
    hub, scratch, base = await hub_and_scratch(tmp_path, FILES)
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        shm = Path("/dev/shm")
        where = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
        left = where / f"{stacking.PREFIX}{dead.pid}-x1"
        kept = where / f"{stacking.PREFIX}{live.pid}-x2"
        for d in (left, kept):
            d.mkdir()
            (d / "0").write_text("tree ...")
        commits = [push_work(hub, scratch, t, {f"{t}.txt": "x\n"}, base) for t in ("s1", "s2")]
        results: list[tuple[str, MergeResult]] = []

        def record(task: Task, result: MergeResult) -> None:
            results.append((task.id, result))

        queue = MergeQueue(hub, "rebase", lambda event: None)
        for task_id, sha in zip(("s1", "s2"), commits):
            queue.submit(merging(task_id), sha)
        queue.close()
        await asyncio.wait_for(queue.run(record), 120)
        assert [r.landed for _, r in results] == [True, True]
        assert not left.exists() and kept.is_dir()
        assert not list(where.glob(f"{stacking.PREFIX}{os.getpid()}-*"))  # its own, removed when done
    finally:
        live.kill()
        live.wait()
        shutil.rmtree(kept, ignore_errors=True)
        shutil.rmtree(left, ignore_errors=True)
