"""The feature ledger's part of a run: FEATURES.json read from the start commit (or the
recorded ledger of a resumed run, with the claim checker's counts), features judged on a
swept tree in a real sandbox, and verification tasks once each."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from longshot.events import ClaimChecked, FeatureStatus, HandoffReceived, MemorySink, RunWarning, TaskCreated
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource
from longshot.pipeline.claims import ClaimCount, ClaimState
from longshot.pipeline.featurerun import FEATURES_FILE, FeatureRun
from longshot.pipeline.features import FeatureRecord, FeatureState
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.reconcile import SweepOutcome
from longshot.pipeline.state import RunState
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import Handoff, Task

from stagekit import fetch, open_hub, push

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FEATURES = json.dumps({"features": [
    {"id": "add", "name": "adding", "test_command": "sh check.sh add", "files": ["calc.sh"]},
    {"id": "sub", "name": "subtracting", "files": ["calc.sh"]},
]})
CHECK = "#!/bin/sh\ngrep -q \"^$1\" calc.sh || { echo no $1 in calc.sh; exit 1; }\necho $1 works\n"


class Rig:
    def __init__(self, tmp_path: Path, hub: Hub) -> None:
        self.tmp_path = tmp_path
        self.hub = hub
        self.sink = MemorySink()
        self.validator = TaskValidator(prefix="worker/", main_branch="main")
        self.tasks: dict[str, Task] = {}
        provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(tasks_dir=tmp_path / "tasks"))
        self.run = FeatureRun(self.sink, self.validator, hub, provider, CheckSource(hub, []), self.tasks.get,
                              prefix="worker/", timeout=60, worker_model="fake-worker")

    async def record(self, **extra: object) -> RunState:
        return RunState(run_id="r1", request="calc", target_branch="main", start_commit=await self.hub.tip(),
                        **extra)  # type: ignore[arg-type]

    async def land(self, task: Task, files: dict[str, str | None]) -> str:
        """``task``'s work landed on the target (a commit with its trailer); the new tip."""
        self.tasks[task.id] = task
        self.run(TaskCreated(task_id=task.id, description=task.description, branch=task.branch, feature=task.feature))
        push(self.hub, self.tmp_path, files, f"{task.description}\n\nLongshot-Task: {task.id}")
        return await self.hub.refresh()


def task(task_id: str, feature: str | None = None, acceptance: str = "") -> Task:
    return Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", feature=feature,
                acceptance=acceptance)


def done(*tasks: Task) -> dict[str, Handoff]:
    return {t.id: Handoff(task_id=t.id, status="complete", summary="done") for t in tasks}


async def rig_with(tmp_path: Path, files: dict[str, str]) -> Rig:
    return Rig(tmp_path, await open_hub(tmp_path, files))


async def started(tmp_path: Path) -> Rig:
    """A new run of the calculator with FEATURES.json, opened."""
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES, "check.sh": CHECK, "calc.sh": "echo\n"})
    await rig.run.open(await rig.record(), resumed=False)
    return rig


async def test_a_new_run_declares_the_features_of_features_json(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    await rig.run.open(await rig.record(), resumed=False)
    assert rig.run.ledger.declared and set(rig.run.ledger.specs) == {"add", "sub"}
    assert rig.validator.features == {"add", "sub"}  # the planner may name only these
    announced = {e.feature: e for e in rig.sink.of_type(FeatureStatus)}
    assert announced["add"].status == "missing" and announced["add"].tests == ["sh check.sh add"]


async def test_without_features_json_the_run_has_no_declared_features(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {"README.md": "r\n"})
    await rig.run.open(await rig.record(), resumed=False)
    assert not rig.run.ledger.declared and rig.validator.features == set() and rig.sink.events == []


@pytest.mark.parametrize("text", ["{not json", '{"feature": []}', "42"])
async def test_an_unreadable_features_json_is_a_warning_that_names_the_file_and_the_fix(tmp_path: Path,
                                                                                       text: str) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: text})
    await rig.run.open(await rig.record(), resumed=False)
    [warning] = rig.sink.of_type(RunWarning)
    assert warning.code == "features.unreadable"
    assert "FEATURES.json cannot be read" in warning.message and 'Fix: make it valid JSON with a "features" list' in \
        warning.message
    assert not rig.run.ledger.declared


async def test_a_resumed_run_keeps_its_recorded_ledger_not_the_files_new_text(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    recorded = FeatureState(source="FEATURES.json", records=[FeatureRecord(id="old", status="claimed", tasks=["t1"])],
                            specs=[], verifying=["old"])
    await rig.run.open(await rig.record(features=recorded), resumed=True)
    assert list(rig.run.ledger.records) == ["old"] and rig.run.ledger.verifying == ["old"]
    assert [(e.feature, e.status) for e in rig.sink.of_type(FeatureStatus)] == [("old", "claimed")]  # re-announced


async def test_a_new_run_ignores_a_ledger_in_its_record(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    stale = FeatureState(source="FEATURES.json", records=[FeatureRecord(id="old", status="verified")])
    await rig.run.open(await rig.record(features=stale), resumed=False)
    assert set(rig.run.ledger.records) == {"add", "sub"}


async def test_a_resumed_run_recorded_without_a_ledger_reads_the_file(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    await rig.run.open(await rig.record(), resumed=True)
    assert set(rig.run.ledger.records) == {"add", "sub"}


async def test_the_features_are_read_at_the_start_commit_not_the_tip(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    record = await rig.record()
    push(rig.hub, tmp_path, {FEATURES_FILE: json.dumps({"features": [{"id": "easy"}]})}, "lower the bar")
    await rig.hub.refresh()
    await rig.run.open(record, resumed=False)
    assert set(rig.run.ledger.specs) == {"add", "sub"}


async def test_opening_restores_the_claim_counts_and_the_snapshot_holds_both_parts(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    assert rig.run.snapshot()["claims"].counts == {}
    counts = ClaimState(counts={"worker/old": ClaimCount(checked=2, unverified=1)})
    await rig.run.open(await rig.record(claims=counts), resumed=True)
    await rig.run.drain()  # nothing to wait for
    state = rig.run.snapshot()
    assert state["claims"].counts == counts.counts and state["claims"] is not counts
    assert isinstance(state["features"], FeatureState) and state["features"].source == "FEATURES.json"
    assert rig.run.claims.default_model == "fake-worker"


@needs_bwrap
async def test_a_worker_claim_heard_on_the_bus_is_checked_by_the_run_loop(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {"check.sh": CHECK, "calc.sh": "echo\n"})
    await rig.run.open(await rig.record(), resumed=False)
    rig.tasks["t1"] = task("t1", acceptance="`sh check.sh add` passes")
    sha = push(rig.hub, tmp_path, {"calc.sh": "add() { :; }\n"}, "add", branch="worker/t1")
    await fetch(rig.hub, "worker/t1")
    rig.run(HandoffReceived(task_id="t1", handoff=Handoff(task_id="t1", status="complete", summary="s", commit=sha)))
    loop = asyncio.create_task(rig.run.run())
    await rig.run.drain()
    loop.cancel()
    [claim] = rig.sink.of_type(ClaimChecked)
    assert claim.verified and claim.commit == sha


@needs_bwrap
async def test_features_are_judged_on_the_swept_tree_and_claimed_ones_get_one_verification_task(
        tmp_path: Path) -> None:
    rig = await started(tmp_path)
    adder, subber = task("t-add", "add"), task("t-sub", "sub")
    await rig.land(adder, {"calc.sh": "add() { :; }\n"})
    tip = await rig.land(subber, {"calc.sh": "add() { :; }\nsub() { :; }\n"})
    tasks = [adder, subber]
    made = await rig.run.verify(SweepOutcome(commit=tip, green=True), tasks, done(*tasks))
    records = {r.id: r for r in rig.run.ledger.records.values()}
    assert records["add"].status == "verified" and "`sh check.sh add` passed" in records["add"].evidence
    assert records["sub"].status == "claimed" and records["sub"].tasks == ["t-sub"]
    [verify] = made
    assert (verify.id, verify.kind, verify.feature, verify.scope) == ("verify-sub", "verify", "sub", ["calc.sh"])
    assert "verify-sub" in rig.validator.known_ids
    assert await rig.run.verify(SweepOutcome(commit=tip, green=True), tasks, done(*tasks)) == []  # once per run
    judged = await rig.run.judge(SweepOutcome(commit=tip, green=True), tasks, done(*tasks))
    assert judged is not None and {r.id: r.status for r in judged} == {"add": "verified", "sub": "claimed"}


@needs_bwrap
async def test_a_failing_feature_command_makes_it_failing(tmp_path: Path) -> None:
    rig = await started(tmp_path)
    adder = task("t-add", "add")
    tip = await rig.land(adder, {"calc.sh": "plus() { :; }\n"})  # landed, but not what the test wants
    judged = await rig.run.judge(SweepOutcome(commit=tip, green=False), [adder], done(adder))
    assert judged is not None
    add = next(r for r in judged if r.id == "add")
    assert add.status == "failing" and "failed (exit 1)" in add.evidence
    assert rig.run.ledger.judged_at == tip


@needs_bwrap
async def test_nothing_is_verified_for_a_discarded_sweep_or_a_run_without_features_json(tmp_path: Path) -> None:
    rig = await started(tmp_path)
    subber = task("t-sub", "sub")
    tip = await rig.land(subber, {"calc.sh": "sub() { :; }\n"})
    assert await rig.run.verify(SweepOutcome(commit=tip, green=True, discarded=True), [subber], done(subber)) == []
    assert rig.run.ledger.judged_at == "" and rig.run.ledger.verifying == []
    assert len(await rig.run.verify(SweepOutcome(commit=tip, green=True), [subber], done(subber))) == 1
    plain = await rig_with(tmp_path / "plain", {"README.md": "r\n"})
    await plain.run.open(await plain.record(), resumed=False)
    assert await plain.run.verify(SweepOutcome(commit=await plain.hub.tip(), green=True), [], {}) == []
    assert await plain.run.judge(SweepOutcome(commit=await plain.hub.tip(), green=True), [], {}) is None


async def test_a_tree_that_cannot_be_read_leaves_the_features_unjudged_and_says_so(tmp_path: Path) -> None:
    rig = await rig_with(tmp_path, {FEATURES_FILE: FEATURES})
    await rig.run.open(await rig.record(), resumed=False)
    judged = await rig.run.judge(SweepOutcome(commit="e" * 40, green=True), [], {})
    [warning] = rig.sink.of_type(RunWarning)
    assert warning.code == "features.unjudged" and "eeeeeeeeee" in warning.message
    assert judged is not None and {r.status for r in judged} == {"missing"}  # the ledger as it stood
