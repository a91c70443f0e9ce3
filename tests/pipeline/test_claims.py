"""Claimed vs verified: a worker's ``complete`` checked by running its task's acceptance
commands on its own commit in a real local sandbox (bubblewrap), counted per role and model."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longshot.events import ClaimChecked, HandoffReceived, LLMUsage, MemorySink, RunWarning
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource
from longshot.pipeline.claims import MAX_COMMANDS, ClaimChecker, ClaimCount, ClaimState
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import Handoff, Task

from stagekit import fetch, open_hub, push

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

CHECK = "#!/bin/sh\necho checking $1\n[ \"$(cat state.txt)\" = good ] || { echo state is bad; exit 3; }\n"


class Rig:
    def __init__(self, tmp_path: Path, hub: Hub, tasks: dict[str, Task], timeout: float = 60) -> None:
        self.tmp_path = tmp_path
        self.hub = hub
        self.sink = MemorySink()
        provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(tasks_dir=tmp_path / "tasks"))
        self.checker = ClaimChecker(provider, hub, CheckSource(hub, []), self.sink, tasks.get, timeout=timeout,
                                    prefix="worker/", default_model="fake-worker")

    def handed_off(self, task_id: str, commit: str | None, status: str = "complete") -> None:
        self.checker(HandoffReceived(task_id=task_id, handoff=Handoff(task_id=task_id, status=status,  # type: ignore[arg-type]
                                                                      summary="done", commit=commit)))

    async def checked(self) -> None:
        """Run the loop until every queued claim is checked."""
        loop = asyncio.create_task(self.checker.run())
        try:
            await self.checker.drain()
        finally:
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop


def task(task_id: str, acceptance: str) -> Task:
    return Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", acceptance=acceptance)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    yield await open_hub(tmp_path, {"check.sh": CHECK, "state.txt": "bad\n"})


async def worker_commit(rig: Rig, task_id: str, state: str) -> str:
    """A worker's commit (state.txt holding ``state``) on its branch in the hub."""
    sha = push(rig.hub, rig.tmp_path, {"state.txt": state + "\n"}, f"work on {task_id}", branch=f"worker/{task_id}")
    await fetch(rig.hub, f"worker/{task_id}")
    return sha


async def test_a_claim_whose_command_passes_on_the_workers_commit_is_verified(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, {"good": task("good", "`sh check.sh one` passes")})
    sha = await worker_commit(rig, "good", "good")
    rig.handed_off("good", sha)
    await rig.checked()
    [claim] = rig.sink.of_type(ClaimChecked)
    assert (claim.task_id, claim.verified, claim.commit, claim.command, claim.exit_code) == (
        "good", True, sha, "sh check.sh one", 0)
    assert claim.role == "worker" and claim.model == "fake-worker"  # no model request seen: the default
    assert "checking one" in claim.evidence
    assert rig.checker.snapshot().counts == {"worker/fake-worker": ClaimCount(checked=1, unverified=0)}


async def test_a_claim_whose_command_fails_is_unverified_with_the_output_as_evidence(tmp_path: Path,
                                                                                     hub: Hub) -> None:
    rig = Rig(tmp_path, hub, {"liar": task("liar", "sh check.sh two passes")})  # a sentence, no backticks
    sha = await worker_commit(rig, "liar", "still bad")
    rig.checker(LLMUsage(task_id="liar", role="subplanner", model="big-model"))
    rig.checker(LLMUsage(task_id="liar", role="planner", model="planner-model"))  # not a worker's request
    rig.handed_off("liar", sha)
    await rig.checked()
    [claim] = rig.sink.of_type(ClaimChecked)
    assert claim.verified is False and claim.exit_code == 3 and claim.command == "sh check.sh two"
    assert "state is bad" in claim.evidence
    assert (claim.role, claim.model) == ("subplanner", "big-model")
    assert rig.checker.snapshot().counts == {"subplanner/big-model": ClaimCount(checked=1, unverified=1)}


async def test_the_first_failing_command_is_the_evidence_and_only_the_first_few_run(tmp_path: Path,
                                                                                    hub: Hub) -> None:
    passing = [f"`sh check.sh p{i}`" for i in range(MAX_COMMANDS)]
    rig = Rig(tmp_path, hub, {"many": task("many", ", ".join(passing) + " and `sh nowhere.sh` pass"),
                              "mixed": task("mixed", "`sh check.sh a` passes; `sh -c 'exit 5'` passes")})
    rig.handed_off("many", await worker_commit(rig, "many", "good"))
    rig.handed_off("mixed", await worker_commit(rig, "mixed", "good"))
    await rig.checked()
    claims = {c.task_id: c for c in rig.sink.of_type(ClaimChecked)}
    assert claims["many"].verified is True  # the missing fourth command was never run
    assert claims["mixed"].verified is False and claims["mixed"].command == "sh -c 'exit 5'"
    assert claims["mixed"].exit_code == 5
    assert rig.checker.snapshot().counts["worker/fake-worker"] == ClaimCount(checked=2, unverified=1)
    assert rig.sink.of_type(RunWarning) == []


async def test_a_command_that_cannot_run_leaves_the_claim_unchecked_not_unverified(tmp_path: Path,
                                                                                   hub: Hub) -> None:
    rig = Rig(tmp_path, hub, {"odd": task("odd", "`no-such-tool --check` passes")})
    rig.handed_off("odd", await worker_commit(rig, "odd", "good"))
    await rig.checked()
    assert rig.sink.of_type(ClaimChecked) == []
    [warning] = rig.sink.of_type(RunWarning)
    assert warning.code == "claim.unchecked" and warning.task_id == "odd"
    assert "`no-such-tool --check` could not run" in warning.message and "exit 127" in warning.message
    assert rig.checker.snapshot().counts == {}


async def test_a_commit_the_hub_does_not_have_is_unchecked_and_the_loop_goes_on(tmp_path: Path, hub: Hub) -> None:
    tasks = {"lost": task("lost", "`sh check.sh x` passes"), "next": task("next", "`sh check.sh y` passes")}
    rig = Rig(tmp_path, hub, tasks)
    rig.handed_off("lost", "f" * 40)
    rig.handed_off("next", await worker_commit(rig, "next", "good"))
    await rig.checked()
    [warning] = rig.sink.of_type(RunWarning)
    assert warning.code == "claim.unchecked" and warning.task_id == "lost"
    assert "the claim of lost could not be checked" in warning.message
    assert [c.task_id for c in rig.sink.of_type(ClaimChecked)] == ["next"]


@pytest.mark.parametrize(("status", "commit", "acceptance", "known"), [
    ("partial", "c" * 40, "`sh check.sh` passes", True),  # not a claim of completion
    ("complete", None, "`sh check.sh` passes", True),  # nothing changed: nothing to check
    ("complete", "c" * 40, "the parser handles empty input", True),  # no command named
    ("complete", "c" * 40, "`sh check.sh` passes", False),  # a task the run does not know
])
async def test_only_complete_handoffs_with_a_commit_and_a_named_command_are_queued(
        tmp_path: Path, hub: Hub, status: str, commit: str | None, acceptance: str, known: bool) -> None:
    rig = Rig(tmp_path, hub, {"t": task("t", acceptance)} if known else {})
    rig.handed_off("t", commit, status)
    await asyncio.wait_for(rig.checker.drain(), 5)  # idle at once: nothing was queued
    assert rig.sink.events == []


async def test_drain_says_how_many_claims_were_left_when_checking_takes_too_long(tmp_path: Path, hub: Hub) -> None:
    tasks = {n: task(n, "`sh -c 'sleep 30'` passes") for n in ("a", "b")}
    rig = Rig(tmp_path, hub, tasks, timeout=0.5)
    rig.handed_off("a", await worker_commit(rig, "a", "good"))
    rig.handed_off("b", await worker_commit(rig, "b", "good"))
    await rig.checked()
    [warning] = [w for w in rig.sink.of_type(RunWarning) if w.task_id is None]
    assert warning.code == "claim.unchecked"
    assert "2 worker claim(s) were left unchecked" in warning.message and "CHECK_TIMEOUT (0.5s)" in warning.message


async def test_snapshot_and_restore_copy_the_counts(tmp_path: Path, hub: Hub) -> None:
    saved = ClaimState(counts={"worker/m": ClaimCount(checked=4, unverified=1)})
    checker = Rig(tmp_path, hub, {}).checker
    checker.restore(ClaimState.model_validate_json(saved.model_dump_json()))
    checker.counts["worker/m"].checked += 1
    assert saved.counts["worker/m"].checked == 4  # restored from a copy
    snap = checker.snapshot()
    checker.counts["worker/m"].unverified += 1
    assert snap.counts == {"worker/m": ClaimCount(checked=5, unverified=1)}  # a copy too
