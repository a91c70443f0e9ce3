"""`pipeline/resume.py` on the run's real parts (built by the orchestrator, the composition root)
and a real hub: `capture` composes every part's snapshot, `recover` restores each part and lets
git decide what became of every task (landed, carried on, adopted from its branch, requeued,
dispatched again, set aside). The crash-and-resume runs themselves are in tests/test_resume.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from longshot.build import build_model, build_provider
from longshot.bus import Bus
from longshot.budget import RunBudget, SpentState
from longshot.events import MemorySink, RunWarning
from longshot.harnesses.base import HarnessResult
from longshot.orchestrator import Orchestrator
from longshot.pipeline.handoff import commit_message
from longshot.pipeline.ledger import LedgerState
from longshot.pipeline.plan import PlannerState
from longshot.pipeline.reconcile import ReconcilerState
from longshot.pipeline.resume import recover
from longshot.pipeline.state import RunState
from longshot.testing.fake_script import RoleScript
from longshot.testing.repos import make_remote
from longshot.types import Handoff, Task, TaskStatus

from helpers import config_for
from hubkit import commit, land

Parts = tuple[Orchestrator, MemorySink]


@pytest.fixture
async def parts(tmp_path: Path, fake_llm) -> AsyncIterator[Callable[[Path, str], Awaitable[Parts]]]:
    """The parts of a run on ``target`` as the orchestrator builds them, its hub opened."""
    fake = fake_llm(RoleScript({}))  # recovering asks no model anything
    models = []

    async def make(target: Path, name: str) -> Parts:
        sink = MemorySink()
        config = config_for(tmp_path / name, target, fake, CHECK_COMMANDS="none")
        bus, budget = Bus(f"run-{name}", [sink]), RunBudget()
        model = build_model(config, bus, budget)
        models.append(model)
        orchestrator = Orchestrator(config, bus, model, build_provider(config, bus.run_id), budget)
        await orchestrator.hub.open()
        return orchestrator, sink

    yield make
    for model in models:
        await model.aclose()


def task(id: str, status: TaskStatus = TaskStatus.PENDING, **fields: object) -> Task:
    made = Task(id=id, description=f"do {id}", branch=f"worker/{id}", **fields)  # type: ignore[arg-type]
    made.status = status
    return made


def record(start: str, *tasks: Task, **fields: object) -> RunState:
    return RunState(run_id="r1", request="build it", target_branch="main", start_commit=start, tasks=list(tasks),
                    **fields)  # type: ignore[arg-type]


async def rebuild(o: Orchestrator, state: RunState, sink: MemorySink):
    """`recover` as a resumed run calls it: from the record as it was read back from git."""
    again = RunState.model_validate_json(state.model_dump_json())
    return await recover(again, o.hub, o.scheduler, o.ledger, o.budget, o.validator, sink)


async def result_on_branch(o: Orchestrator, base: str, t: Task, *, attempt: int, status: str = "complete",
                           of: str | None = None) -> str:
    """A worker's commit on ``t``'s branch, as the runner (or salvage: ``interrupted``) writes it."""
    author = task(of or t.id, attempts=attempt)
    message = commit_message(author, HarnessResult(status="complete", summary=f"did {t.id}"), status=status)
    sha = await commit(o.hub.git, base, message, {f"{t.id}.txt": f"{t.id}\n"})
    await o.hub.git.run("update-ref", f"refs/heads/{t.branch}", sha)
    return sha


async def test_every_part_restores_what_it_saved(tmp_path: Path, parts) -> None:
    """The record as the orchestrator captures it (`capture` over every part), written, read back
    and restored into a fresh run's parts, captures the same again (git adding what it knows)."""
    target = make_remote(tmp_path, {"README.md": "x\n"})
    first, _ = await parts(target, "first")
    start = await first.hub.tip()
    for t in (task("a"), task("b"), task("c"), task("p"), task("p-1", parent="p")):
        first.scheduler.add(t)
    for t in (first.scheduler.tasks["a"], first.scheduler.tasks["b"]):
        first.scheduler.move(t, TaskStatus.RUNNING)
    first.ledger.handoff(first.scheduler.tasks["a"], Handoff(task_id="a", status="partial", summary="half", commit=start))
    first.budget.add("worker", "a", 1234, 0.5)
    first.validator.restore(first.validator.snapshot().model_copy(update={
        "known_ids": ["a", "b", "c", "p", "p-1"], "known_branches": ["worker/a", "worker/b"], "id_counter": 7}))
    first.ledger.review_parent("p")
    fixed = record(start, planner=PlannerState(iteration=3, scratchpad="the plan", summary="so far", notes=["n1"],
                                               last_proposed=2, last_tip=start),
                   reconciler=ReconcilerState(sweeps=4, fix_counter=2, notes=["fix 1 landed"]))
    stages = await first._stages(fixed, resumed=True)  # noqa: SLF001 - the parts built from the record
    saved = stages.capture()
    assert saved.reconciler == fixed.reconciler and saved.planner.scratchpad == "the plan"
    assert saved.spent.tokens == 1234 and saved.id_counter == 7
    assert [(t.id, t.status) for t in saved.tasks] == [("a", TaskStatus.PARTIAL), ("b", TaskStatus.RUNNING),
                                                        ("c", TaskStatus.PENDING), ("p", TaskStatus.PENDING),
                                                        ("p-1", TaskStatus.PENDING)]

    second, sink = await parts(target, "second")
    found = await rebuild(second, saved, sink)
    again = (await second._stages(saved, resumed=True)).capture()  # noqa: SLF001

    assert found.redispatched == ["b"] and not (found.landed or found.adopted or found.results or found.requeue)
    b = next(t for t in again.tasks if t.id == "b")
    assert b.status == TaskStatus.PENDING and "dispatched again from its branch" in b.reason
    b_saved = next(t for t in saved.tasks if t.id == "b").model_copy(update={"status": b.status, "reason": b.reason})
    assert again == saved.model_copy(update={"tasks": [b_saved if t.id == "b" else t for t in saved.tasks]})
    assert second.planner.iteration == 3
    assert second.validator.free_branch("worker/a") == "worker/a-2"  # a recorded task's name is never reused


async def test_git_says_what_landed_and_what_a_landed_continuation_carried_on(tmp_path: Path, parts) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    o, sink = await parts(target, "run")
    start = await land(o.hub, commit_message(task("old"), HarnessResult(status="complete", summary="earlier run")))
    landed = [task("a", TaskStatus.MERGING), task("k", TaskStatus.LANDED), task("c", TaskStatus.FAILED),
              task("u", TaskStatus.UNCHANGED), task("old", TaskStatus.MERGING), task("d", TaskStatus.LANDED,
                                                                                     continue_from="c")]
    for t in (landed[0], landed[1], task("d", continue_from="c"), task("u2", continue_from="u")):
        await land(o.hub, commit_message(t, HarnessResult(status="complete", summary=f"did {t.id}")),
                   {f"{t.id}.txt": "x\n"})
    state = record(start, *landed, ledger=LedgerState(unlanded={"a": "queued", "c": "conflict", "x": "kept"}))

    found = await rebuild(o, state, sink)

    status = {t.id: t.status for t in o.scheduler.tasks.values()}
    assert status == {"a": TaskStatus.LANDED, "k": TaskStatus.LANDED, "c": TaskStatus.SUPERSEDED,
                      "u": TaskStatus.UNCHANGED, "old": TaskStatus.PENDING, "d": TaskStatus.LANDED}
    assert found.landed == ["a"]  # k was known to have landed
    assert found.redispatched == ["old"]  # its trailer is from before the run started: not this run's landing
    assert o.scheduler.tasks["c"].reason == "carried on by a continuation that landed"
    assert o.ledger.unlanded == {"x": "kept"}


async def test_unfinished_work_is_adopted_requeued_or_dispatched_again(tmp_path: Path, parts) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    o, sink = await parts(target, "run")
    earlier = task("reused", TaskStatus.RUNNING, attempts=1)
    # Its branch's result already landed, before this run started (so no landing of this run).
    await o.hub.push_tip(await result_on_branch(o, await o.hub.tip(), earlier, attempt=1), await o.hub.tip())
    start = await o.hub.tip()
    tasks = {t.id: t for t in (earlier,
        task("queued", TaskStatus.MERGING, attempts=1), task("gone", TaskStatus.MERGING, attempts=1),
        task("current", TaskStatus.RUNNING, attempts=2), task("stale", TaskStatus.RUNNING, attempts=2),
        task("unseen", TaskStatus.PENDING, attempts=0), task("seen", TaskStatus.PENDING, attempts=1),
        task("salvaged", TaskStatus.RUNNING, attempts=1), task("foreign", TaskStatus.RUNNING, attempts=1),
        task("idle", TaskStatus.RUNNING, attempts=1), task("unborn", TaskStatus.RUNNING, attempts=1))}
    queued = await result_on_branch(o, start, tasks["queued"], attempt=1)
    current = await result_on_branch(o, start, tasks["current"], attempt=2, status="partial")
    await result_on_branch(o, start, tasks["stale"], attempt=1)
    unseen = await result_on_branch(o, start, tasks["unseen"], attempt=1, status="failed")
    await result_on_branch(o, start, tasks["seen"], attempt=1)
    await result_on_branch(o, start, tasks["salvaged"], attempt=1, status="interrupted")
    await result_on_branch(o, start, tasks["foreign"], attempt=1, of="someone-else")
    await o.hub.git.run("update-ref", "refs/heads/worker/idle", start)  # made, nothing committed on it yet
    handoffs = {"queued": Handoff(task_id="queued", status="complete", summary="s", commit=queued),
                "gone": Handoff(task_id="gone", status="complete", summary="s", commit="e" * 40)}
    state = record(start, *tasks.values(), handoffs=handoffs)

    found = await rebuild(o, state, sink)

    assert found.requeue == [(o.scheduler.tasks["queued"], queued)]
    assert sorted(found.adopted) == ["current", "queued", "unseen"]
    assert {t.id: (h.status, h.commit, h.files_changed, h.summary) for t, h in found.results} == {
        "current": ("partial", current, ["current.txt"], "did current"),
        "unseen": ("failed", unseen, ["unseen.txt"], "did unseen")}
    assert {t.id: (t.status, t.attempts) for t, _ in found.results} == {
        "current": (TaskStatus.RUNNING, 2), "unseen": (TaskStatus.RUNNING, 1)}
    assert sorted(found.redispatched) == ["foreign", "gone", "idle", "reused", "salvaged", "stale",
                                         "unborn"]
    for id in found.redispatched:
        t = o.scheduler.tasks[id]
        assert t.status == TaskStatus.PENDING and "dispatched again from its branch" in t.reason, id
    assert o.scheduler.tasks["seen"].status == TaskStatus.PENDING and o.scheduler.tasks["seen"].reason == ""


async def test_branches_no_recorded_task_owns_are_set_aside_and_their_names_reserved(tmp_path: Path, parts) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    o, sink = await parts(target, "run")
    start = await o.hub.tip()
    for branch in ("worker/a", "worker/stray", "worker/x/deep", "elsewhere/b"):
        await o.hub.git.run("update-ref", f"refs/heads/{branch}", start)

    found = await rebuild(o, record(start, task("a", TaskStatus.LANDED)), sink)

    assert found.set_aside == ["worker/stray", "worker/x/deep"]  # not the task's, not outside the prefix
    warnings = [w for w in sink.of_type(RunWarning) if w.code == "branch.set_aside"]
    assert [w.message.split()[1] for w in warnings] == ["worker/stray", "worker/x/deep"]
    assert all("kept as it is, its name reserved" in w.message for w in warnings)
    assert o.validator.free_branch("worker/stray") == "worker/stray-2"
    assert await o.hub.git.rev_parse("refs/heads/worker/stray") == start  # never deleted


async def test_a_split_task_whose_subtasks_all_ended_goes_back_to_its_subplanner(tmp_path: Path, parts) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    o, sink = await parts(target, "run")
    start = await o.hub.tip()
    state = record(start, task("p", TaskStatus.DECOMPOSED), task("p-1", TaskStatus.LANDED, parent="p"),
                   task("p-2", TaskStatus.FAILED, parent="p"), task("q", TaskStatus.DECOMPOSED),
                   task("q-1", TaskStatus.LANDED, parent="q"), task("q-2", TaskStatus.PENDING, parent="q"),
                   task("r", TaskStatus.DECOMPOSED), spent=SpentState(tokens=99, cost_usd=0.25))

    await rebuild(o, state, sink)

    assert o.ledger.parents_to_review == ["p"]  # q still has work; r has no subtask (yet)
    assert (o.budget.tokens, o.budget.cost_usd) == (99, 0.25)


async def test_a_start_the_target_no_longer_holds_reads_every_trailer_of_the_branch(tmp_path: Path, parts) -> None:
    """The run started on a history that was rewritten since (or that this machine never fetched):
    what landed is read from the whole branch, as `longshot status` and the feature prover read it,
    instead of stopping the resumed run on a git error."""
    target = make_remote(tmp_path, {"README.md": "x\n"})
    o, sink = await parts(target, "run")
    a, b = task("a", TaskStatus.MERGING), task("b", TaskStatus.FAILED)
    await land(o.hub, commit_message(task("c", continue_from="b"), HarnessResult(status="complete", summary="c")))
    await land(o.hub, commit_message(a, HarnessResult(status="complete", summary="did a")), {"a.txt": "x\n"})

    found = await rebuild(o, record("f" * 40, a, b), sink)

    assert found.landed == ["a"] and o.scheduler.tasks["b"].status == TaskStatus.SUPERSEDED
