"""The run state in git (`pipeline/state.py`) when the target repository does not go along: a
publish refused (said once, kept in the hub, tried again, a refused branch never forced), two
machines' states that diverged, a document that cannot be read, and ``--reset``'s forget."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from longshot.crash import CrashPoints
from longshot.events import MemorySink, RunWarning, StateSaved
from longshot.hub import Hub
from longshot.pipeline.state import STATE_FILE, Capture, RunState, StateStore, owner_tag
from longshot.testing.repos import git, make_remote

from hubkit import commit, open_hub, refs


def record(start: str, request: str = "build it") -> RunState:
    return RunState(run_id="r1", request=request, target_branch="main", start_commit=start)


async def store_on(tmp_path: Path, target: Path, name: str = "hub") -> tuple[Hub, StateStore, MemorySink, Capture]:
    """A store on a fresh hub of ``target``, and a capture of a run that started at its tip."""
    hub = await open_hub(tmp_path, target, name)
    sink = MemorySink()
    start = await hub.tip()
    return hub, StateStore(hub, sink, CrashPoints()), sink, lambda: record(start)


def codes(sink: MemorySink) -> list[str]:
    return [w.code for w in sink.of_type(RunWarning)]


async def test_a_branch_the_target_moved_is_never_forced_and_the_rest_goes_out_later(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, store, sink, capture = await store_on(tmp_path, target)
    start = await hub.tip()
    theirs = await commit(hub.git, start, "someone else's work")
    await hub.git.run("push", "--quiet", "origin", f"{theirs}:refs/heads/worker/a")  # someone else's, meanwhile
    ours = await commit(hub.git, start, "our work on a")
    await hub.git.run("update-ref", "refs/heads/worker/a", ours)
    await hub.git.run("update-ref", "refs/heads/worker/b", await commit(hub.git, start, "b"))
    store.mark("a done", branch="worker/a")
    store.mark("b done", branch="worker/b")

    first = await store.flush(capture)

    assert codes(sink) == ["state.unpublished"]
    assert "refs/heads/worker/a" in sink.of_type(RunWarning)[0].message
    assert git("rev-parse", "worker/a", cwd=target) == theirs  # a push never forces
    assert await hub.git.rev_parse(store.ref) == first  # the state is kept in the hub
    assert sorted(store._branches) == ["worker/b"]  # noqa: SLF001 - b is tried again, a is not
    store.mark("later")
    second = await store.flush(capture)
    assert codes(sink) == ["state.unpublished"]  # said once
    assert refs(target, "refs/longshot/state/") == {"refs/longshot/state/main": second}
    assert refs(target, "refs/heads/worker/b") and git("rev-parse", "worker/a", cwd=target) == theirs


async def test_a_target_that_refuses_everything_keeps_the_state_in_the_hub_and_says_so_once(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, store, sink, capture = await store_on(tmp_path, target)
    await hub.git.run("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    for i in range(3):
        store.mark(f"change {i}")
        written = await store.flush(capture)
        assert written and await hub.git.rev_parse(store.ref) == written
    assert codes(sink) == ["state.unpublished"] and store.writes == 3
    saved = sink.of_type(StateSaved)
    assert [await hub.git.rev_parse(f"{s.commit}^") for s in saved[1:]] == [s.commit for s in saved[:-1]]
    assert all(s.ref == "refs/longshot/state/main" and s.bytes > 0 for s in saved)


async def test_states_that_diverged_between_machines_resolve_to_the_targets(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, here, sink, capture = await store_on(tmp_path, target)
    here.mark("first")
    await here.flush(capture)
    _, there, _, _ = await store_on(tmp_path, target, "other-machine")
    await there.load()
    there.mark("elsewhere")
    published = await there.flush(lambda: record("0" * 40, "the other machine's"))
    never = record("0" * 40, "this machine's, never published")
    local = await here._write(never.model_dump_json().encode(), "kept here")  # noqa: SLF001
    await hub.open()  # fetches the target's state beside this machine's

    again = StateStore(hub, sink, CrashPoints())
    loaded = await again.load()

    assert loaded is not None and loaded.request == "the other machine's"
    assert codes(sink) == ["state.diverged"] and local[:10] in sink.of_type(RunWarning)[0].message
    assert await hub.git.rev_parse(again.ref) == published  # moved by compare-and-swap to the target's
    again.mark("resumed")
    assert await hub.git.rev_parse(f"{await again.flush(lambda: loaded)}^") == published  # later writes build on it


async def test_a_state_that_cannot_be_read_is_said_and_taken_as_no_run(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, store, sink, _ = await store_on(tmp_path, target)
    for files in ({STATE_FILE: '{"run_id": 1}'}, {"other.json": "{}"}):
        broken = await commit(hub.git, None, "longshot state: from the future", files)
        await hub.git.run("update-ref", store.ref, broken)
        assert await StateStore(hub, sink, CrashPoints()).load() is None
    assert codes(sink) == ["state.unreadable", "state.unreadable"]
    assert "is ignored" in sink.of_type(RunWarning)[0].message


async def test_forget_removes_the_state_here_and_in_the_target_and_tolerates_its_absence(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, store, _, capture = await store_on(tmp_path, target)
    store.mark("run started")
    await store.flush(capture)
    assert await hub.git.rev_parse(store.remote_ref) and refs(target, "refs/longshot/")

    await store.forget()

    assert await hub.git.rev_parse(store.ref) is None and await hub.git.rev_parse(store.remote_ref) is None
    assert refs(target, "refs/longshot/") == {}
    await store.forget()  # nothing left anywhere: still fine
    store.mark("a new run")
    first = await store.flush(capture)
    assert first and await hub.git.rev_parse(f"{first}^") is None  # a new history, not the forgotten one


async def test_what_a_write_says_and_when_there_is_nothing_to_write(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub, store, sink, capture = await store_on(tmp_path, target)
    assert await store.flush(capture) is None  # nothing marked: nothing to write
    for reason in ["b", "a", "b", "", "c", "d", "e", "f", "g"]:
        store.mark(reason)
    written = await store.flush(capture, "first")
    [saved] = sink.of_type(StateSaved)
    assert saved.reason == "b; a; c; d; e (+3 more)" and saved.commit == written
    assert await hub.git.run("log", "-1", "--format=%s", written) == "longshot state: b; a; c; d; e (+3 more)"
    assert await hub.git.run("ls-tree", "--name-only", written) == STATE_FILE
    assert await store.flush(capture) is None and await store.flush(capture, "") is None
    assert owner_tag() == f"{socket.gethostname()}:{os.getpid()}"
