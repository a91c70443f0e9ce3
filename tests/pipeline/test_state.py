"""The durable state store, the resume decision, crash points and the run lock, on real git."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.crash import CrashPoints
from longshot.errors import ConfigError
from longshot.events import MemorySink, StateSaved
from longshot.hub import Hub
from longshot.pipeline.state import RunState, StateStore, decide
from longshot.testing.repos import git
from longshot.types import Task

AUTHOR = ("Longshot", "longshot@localhost")


async def opened(tmp_path: Path, remote: Path, name: str = "hub") -> tuple[Hub, StateStore, MemorySink]:
    hub = Hub(tmp_path / name, str(remote), "main", AUTHOR)
    await hub.open()
    sink = MemorySink()
    return hub, StateStore(hub, sink, CrashPoints(), interval=0.05), sink


def state(start: str, *tasks: str, request: str = "build it") -> RunState:
    return RunState(run_id="run-1", request=request, target_branch="main", start_commit=start,
                    tasks=[Task(id=t, description=f"do {t}", branch=f"worker/{t}") for t in tasks])


async def test_each_write_is_one_commit_on_the_last_and_is_published_with_new_branches(
        tmp_path: Path, remote) -> None:
    target = remote({"a.txt": "a\n"})
    hub, store, sink = await opened(tmp_path, target)
    start = await hub.tip()
    current = state(start, "t1")

    def capture() -> RunState:
        return current
    await hub.git.run("update-ref", "refs/heads/worker/t1", start)

    first = await store.flush(capture, "run started")
    current = state(start, "t1", "t2")
    store.mark("task.created", branch="worker/t1")
    second = await store.flush(capture)

    assert first and second and await hub.git.rev_parse(f"{second}^") == first
    assert [e.commit for e in sink.of_type(StateSaved)] == [first, second]
    assert git("rev-parse", "refs/longshot/state/main", cwd=target) == second  # published
    assert git("rev-parse", "refs/heads/worker/t1", cwd=target) == start  # with the branch marked
    assert await store.flush(capture) is None  # nothing marked: nothing written
    loaded = await (await opened(tmp_path, target, "elsewhere"))[1].load()
    assert loaded is not None and [t.id for t in loaded.tasks] == ["t1", "t2"]


async def test_marks_are_batched_into_one_write(tmp_path: Path, remote) -> None:
    import asyncio

    target = remote({"a.txt": "a\n"})
    hub, store, sink = await opened(tmp_path, target)
    writer = asyncio.create_task(store.run(lambda: state("0" * 40)))
    for i in range(50):
        store.mark(f"change {i}")
    await asyncio.sleep(0.5)
    writer.cancel()
    saved = sink.of_type(StateSaved)
    assert len(saved) == 1 and "change 0" in saved[0].reason and "(+45 more)" in saved[0].reason


async def test_load_prefers_this_machine_s_newer_state_and_else_the_published_one(tmp_path: Path, remote) -> None:
    target = remote({"a.txt": "a\n"})
    hub, store, sink = await opened(tmp_path, target)
    start = await hub.tip()
    await store.flush(lambda: state(start, "t1"), "one")
    # Written here but not published (the push of the second write failed or was cut off):
    local = await store._write(state(start, "t1", "t2").model_dump_json().encode(), "two")  # noqa: SLF001 - a write whose publish never happened
    assert git("rev-parse", "refs/longshot/state/main", cwd=target) != local

    hub2 = Hub(tmp_path / "hub", str(target), "main", AUTHOR)  # the same machine, after a crash
    await hub2.open()
    again = StateStore(hub2, sink, CrashPoints())
    assert [t.id for t in (await again.load()).tasks] == ["t1", "t2"]  # type: ignore[union-attr]

    _, elsewhere, _ = await opened(tmp_path, target, "other-machine")
    assert [t.id for t in (await elsewhere.load()).tasks] == ["t1"]  # type: ignore[union-attr]


def test_decide_resumes_only_what_makes_sense() -> None:
    open_run = state("0" * 40, "t1")
    done = open_run.model_copy(update={"finished": True})
    where = "refs/longshot/state/main of x"
    assert decide(open_run, None, resume=True, confirm=None, where=where)
    assert decide(open_run, "build it", resume=False, confirm=None, where=where)  # same request: resumed
    assert decide(open_run, "build it", resume=False, confirm=lambda q: "Resume" in q, where=where)
    assert not decide(done, "build it", resume=False, confirm=None, where=where)  # finished: a new run
    assert not decide(None, "build it", resume=False, confirm=None, where=where)
    cases = [(None, None, True, "no unfinished run"), (done, None, True, "no unfinished run"),
             (open_run, "other", True, "another request"), (open_run, "other", False, "--reset"),
             (open_run, None, False, "a request is needed")]
    for stored, request, resume, says in cases:
        with pytest.raises(ConfigError, match=says):
            decide(stored, request, resume=resume, confirm=None, where=where)
    with pytest.raises(ConfigError, match="--resume"):
        decide(open_run, "build it", resume=False, confirm=lambda q: False, where=where)


def test_crash_points_are_named_and_counted() -> None:
    with pytest.raises(ConfigError, match="unknown crash point 'nowhere'"):
        CrashPoints("nowhere")
    with pytest.raises(ConfigError, match="LONGSHOT_CRASH_AT"):
        CrashPoints("dispatch:0")
    armed = CrashPoints("dispatch:3")
    armed.reached("dispatch")
    armed.reached("merge.landed")  # other points pass freely
    armed.reached("dispatch")
    assert armed.passes == 2  # the third pass would kill this process; tests/test_resume.py does that for real


async def test_a_killed_runs_git_leftovers_in_the_hub_are_removed(tmp_path: Path, remote) -> None:
    target = remote({"a.txt": "a\n"})
    hub, _, _ = await opened(tmp_path, target)
    (hub.path / "refs" / "heads" / "main.lock").write_text("x")
    (hub.path / "MERGE_HEAD").write_text("x")
    await hub.open()
    assert sorted(hub.repaired) == ["MERGE_HEAD", "refs/heads/main.lock"]
    assert not (hub.path / "MERGE_HEAD").exists()


async def test_a_writer_cancelled_at_any_point_of_a_write_leaves_the_next_write_sound(tmp_path: Path, remote) -> None:
    """The run cancels the background writer at its end, then writes once more: wherever the
    cancellation lands (here: every millisecond of a write), that last write must succeed."""
    import asyncio

    target = remote({"a.txt": "a\n"})
    hub, store, sink = await opened(tmp_path, target)
    start = await hub.tip()
    def capture() -> RunState:
        return state(start, "t1")

    await store.flush(capture, "first")
    for delay_ms in range(0, 80, 2):
        store.mark(f"change at {delay_ms} ms")
        writer = asyncio.create_task(store.flush(capture))
        await asyncio.sleep(delay_ms / 1000)
        writer.cancel()
        await store.flush(capture, f"after {delay_ms} ms")  # raised GitError (CAS) when cut mid-update-ref
        last = sink.of_type(StateSaved)[-1]  # this write, or the cut one if it had not taken its marks yet
        assert f"after {delay_ms} ms" in last.reason
        assert git("rev-parse", "refs/longshot/state/main", cwd=target) == last.commit
        assert await hub.git.rev_parse("refs/longshot/state/main") == last.commit


def test_a_document_from_before_a_field_was_dropped_still_loads() -> None:
    """``subplans`` was recorded but never read (subtask ids are counted from the scheduler); a state
    written by an older version still resumes."""
    old = {"run_id": "r", "request": "q", "target_branch": "main", "start_commit": "a" * 40,
           "subplans": {"t1": 3}}
    state = RunState.model_validate(old)
    assert state.run_id == "r" and "subplans" not in state.model_dump()
