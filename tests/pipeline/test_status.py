"""``longshot status`` (`pipeline/status.py`): the recorded run read from the target repository
alone, in a throwaway repository (nothing is changed, no hub is needed); what landed comes from
the target branch's trailers since the run started, whatever the record says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longshot.crash import CrashPoints
from longshot.errors import ConfigError
from longshot.events import MemorySink
from longshot.feature_events import FeatureStatus
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.claims import ClaimCount, ClaimState
from longshot.pipeline.features import FeatureRecord, FeatureState
from longshot.pipeline.handoff import commit_message
from longshot.pipeline.state import RunState, StateStore
from longshot.pipeline.status import RunStatus, feature_events, read_status, status_document
from longshot.testing.repos import make_remote
from longshot.types import Task, TaskStatus

from hubkit import AUTHOR, commit, land, open_hub, refs


def task(id: str, status: TaskStatus, **fields: object) -> Task:
    made = Task(id=id, description=f"do {id}", branch=f"worker/{id}", **fields)  # type: ignore[arg-type]
    made.status = status
    return made


async def recorded(hub: Hub, state: RunState) -> str:
    """``state`` written and published as a run writes it; returns the state commit."""
    store = StateStore(hub, MemorySink(), CrashPoints())
    written = await store.flush(lambda: state, "test")
    assert written
    return written


async def landing(hub: Hub, t: Task) -> str:
    return await land(hub, commit_message(t, HarnessResult(status="complete", summary="done")), {f"{t.id}.txt": "x\n"})


async def test_no_recorded_run_is_none_and_an_unreachable_target_names_the_setting(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    assert await read_status(str(target), "main", AUTHOR) is None

    with pytest.raises(ConfigError) as missing:
        await read_status(str(target), "trunk", AUTHOR)
    assert "GIT_REPO_URL: cannot fetch 'trunk' from" in str(missing.value)
    assert "Fix: point GIT_REPO_URL at the repository of the run, or set GIT_MAIN_BRANCH" in str(missing.value)
    with pytest.raises(ConfigError, match="GIT_REPO_URL: cannot fetch 'main' from /nonexistent"):
        await read_status("/nonexistent/repo.git", "main", AUTHOR)


async def test_what_landed_is_read_from_the_trailers_since_the_start_and_nothing_is_changed(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    early = task("early", TaskStatus.MERGING)
    await landing(hub, early)  # landed by an earlier run: not this run's
    start = await hub.tip()
    tasks = [task("a", TaskStatus.MERGING), task("b", TaskStatus.LANDED), early, task("c", TaskStatus.FAILED,
                                                                                        reason="tests fail"),
             task("d", TaskStatus.PENDING)]
    await landing(hub, tasks[0])
    await landing(hub, tasks[1])
    await recorded(hub, RunState(run_id="r1", request="build it", target_branch="main", start_commit=start,
                                 tasks=tasks))
    before = refs(target)

    found = await read_status(str(target), "main", AUTHOR)

    assert found is not None and found.tip == await hub.tip() and found.state.run_id == "r1"
    assert [(t.id, t.status) for t in found.tasks] == [
        ("a", TaskStatus.LANDED), ("b", TaskStatus.LANDED), ("early", TaskStatus.MERGING),
        ("c", TaskStatus.FAILED), ("d", TaskStatus.PENDING)]
    assert found.state.tasks[0].status == TaskStatus.MERGING  # the record itself is left as it was
    assert {s: [t.id for t in ts] for s, ts in found.by_status().items()} == {
        "landed": ["a", "b"], "merging": ["early"], "failed": ["c"], "pending": ["d"]}
    assert refs(target) == before


async def test_a_start_the_target_no_longer_holds_reads_every_trailer_of_the_branch(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    a = task("a", TaskStatus.RUNNING)
    await landing(hub, a)
    gone = "f" * 40  # the run started on a history that was rewritten since
    await recorded(hub, RunState(run_id="r1", request="q", target_branch="main", start_commit=gone, tasks=[a]))

    found = await read_status(str(target), "main", AUTHOR)

    assert found is not None and [t.status for t in found.tasks] == [TaskStatus.LANDED]


async def test_a_state_that_cannot_be_read_is_no_run(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    for text in ("not json", json.dumps({"run_id": "r1"}), ""):
        files = {"state.json": text} if text else {"other.json": "{}"}
        broken = await commit(hub.git, None, "longshot state: broken", files)
        await hub.git.run("push", "--quiet", "--force", "origin", f"{broken}:refs/longshot/state/main")
        assert await read_status(str(target), "main", AUTHOR) is None, text


def test_the_json_document_carries_the_run_its_tasks_features_and_claims() -> None:
    state = RunState(
        run_id="r1", request="build it", target_branch="main", start_commit="s" * 40, finished=True, exit_code=1,
        tasks=[task("a", TaskStatus.LANDED, feature="mul", parent=None, attempts=2)],
        features=FeatureState(source="FEATURES.json", records=[
            FeatureRecord(id="mul", name="multiply", status="verified", tasks=["a"], tests=["tests/test_mul.py"])]),
        claims=ClaimState(counts={"worker/fake": ClaimCount(checked=3, unverified=1),
                                  "worker/idle": ClaimCount()}))
    state.spent.tokens, state.spent.cost_usd = 1500, 0.125
    found = RunStatus(state=state, tip="t" * 40, tasks=state.tasks)

    doc = status_document(found)

    assert json.loads(json.dumps(doc)) == doc  # plain JSON
    assert {k: doc[k] for k in ("run_id", "request", "target_branch", "start_commit", "tip", "finished", "exit_code",
                                "tokens", "cost_usd", "features_source")} == {
        "run_id": "r1", "request": "build it", "target_branch": "main", "start_commit": "s" * 40, "tip": "t" * 40,
        "finished": True, "exit_code": 1, "tokens": 1500, "cost_usd": 0.125, "features_source": "FEATURES.json"}
    assert doc["tasks"] == [{"id": "a", "status": "landed", "kind": "task", "feature": "mul", "parent": None,
                             "attempts": 2, "description": "do a", "reason": ""}]
    assert doc["features"][0]["id"] == "mul" and doc["features"][0]["tests"] == ["tests/test_mul.py"]
    assert doc["claims"] == {"worker/fake": {"checked": 3, "unverified": 1, "unverified_rate": 0.3333},
                             "worker/idle": {"checked": 0, "unverified": 0, "unverified_rate": None}}

    events = feature_events(found)
    assert [type(e) for e in events] == [FeatureStatus]
    assert (events[0].run_id, events[0].feature, events[0].name, events[0].status, events[0].tasks) == (
        "r1", "mul", "multiply", "verified", ["a"])
    assert feature_events(RunStatus(state=RunState(run_id="r", request="q", target_branch="m", start_commit="s"),
                                    tip="t")) == []
