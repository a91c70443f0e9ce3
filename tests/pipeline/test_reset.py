"""``--reset`` (`pipeline/reset.py`) on real repositories: the plan names every ref it would touch
and why the target stays, a refusal changes nothing, everything is backed up in the target
repository first, the target branch is rewound only with ``--yes`` and only by compare-and-swap,
and worker branches are deleted wherever the target keeps them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from longshot.crash import CrashPoints
from longshot.errors import GitError
from longshot.events import MemorySink, RunWarning
from longshot.hub import Hub
from longshot.pipeline.reset import ResetPlan, apply_reset, plan_reset, reset
from longshot.pipeline.state import RunState, StateStore
from longshot.testing.repos import git, make_remote

from hubkit import commit, land, open_hub, refs


@dataclass
class World:
    target: Path
    hub: Hub
    store: StateStore
    sink: MemorySink
    start: str
    branches: dict[str, str] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def show(self, text: str) -> None:
        self.shown.append(text)

    def notes(self) -> list[str]:
        assert {w.code for w in self.sink.of_type(RunWarning)} <= {"reset.note"}
        return [w.message for w in self.sink.of_type(RunWarning)]


async def world(tmp_path: Path, *, record: bool = True, landed: int = 1,
                branches: tuple[str, ...] = ("a", "b"), publish: bool = True) -> World:
    """A target whose recorded run started at its first commit, with ``landed`` commits since
    and a worker branch (published with the state, as a run publishes them) per name."""
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    sink = MemorySink()
    store = StateStore(hub, sink, CrashPoints())
    start = await hub.tip()
    w = World(target=target, hub=hub, store=store, sink=sink, start=start)
    for name in branches:
        sha = await commit(hub.git, start, f"work of {name}", {f"{name}.txt": f"{name}\n"})
        await hub.git.run("update-ref", f"refs/heads/worker/{name}", sha)
        w.branches[f"worker/{name}"] = sha
        store.mark("task.created", branch=f"worker/{name}" if publish else None)
    for i in range(landed):
        await land(hub, f"landed {i}", {f"l{i}.txt": "l\n"})
    if record:
        await store.flush(lambda: RunState(run_id="r1", request="build it", target_branch="main", start_commit=start),
                          "run started")
    sink.events.clear()
    return w


def confirmer(w: World, answer: bool):
    def confirm(question: str) -> bool:
        w.asked.append(question)
        return answer

    return confirm


async def test_nothing_recorded_and_no_worker_branch_is_nothing_to_reset(tmp_path: Path) -> None:
    w = await world(tmp_path, record=False, landed=1, branches=())
    before = refs(w.target)

    plan = await plan_reset(w.hub, w.store)
    assert plan.empty and plan.describe(w.hub) == [  # no backup line: nothing would be copied
        "leave main as it is: no run is recorded, so there is no known start to go back to"]
    assert await reset(w.hub, w.store, yes=True, confirm=None, show=w.show, emit=w.sink)

    assert w.shown == ["--reset: nothing to reset (no recorded run, no worker branches)"]
    assert w.sink.events == [] and refs(w.target) == before


async def test_the_plan_names_the_state_every_worker_branch_and_the_rewind(tmp_path: Path) -> None:
    w = await world(tmp_path)
    tip = await w.hub.tip()
    state = await w.hub.git.rev_parse(w.store.ref)

    plan = await plan_reset(w.hub, w.store)

    assert re.fullmatch(r"refs/longshot/backup/\d{8}T\d{6}Z", plan.backup)
    assert (plan.state, plan.branches, plan.rewind) == (state, sorted(w.branches.items()), (tip, w.start))
    assert plan.describe(w.hub) == [
        f"delete the recorded run state (refs/longshot/state/main at {state[:10]})",  # type: ignore[index]
        f"delete branch worker/a ({w.branches['worker/a'][:10]})",
        f"delete branch worker/b ({w.branches['worker/b'][:10]})",
        f"rewind main from {tip[:10]} to {w.start[:10]}, where the recorded run started (only with --yes)",
        f"everything deleted or rewound is first copied under {plan.backup}/"]


async def test_the_target_stays_where_no_start_is_known_or_the_start_is_not_behind_it(tmp_path: Path) -> None:
    unrecorded = await world(tmp_path / "1", record=False)
    plan = await plan_reset(unrecorded.hub, unrecorded.store)
    assert plan.rewind is None and plan.state is None and len(plan.branches) == 2
    assert "leave main as it is: no run is recorded, so there is no known start to go back to" in plan.describe(
        unrecorded.hub)

    at_start = await world(tmp_path / "2", landed=0)
    plan = await plan_reset(at_start.hub, at_start.store)
    assert plan.rewind is None and "leave main as it is: it is where the recorded run started" in plan.describe(
        at_start.hub)

    rewritten = await world(tmp_path / "3", landed=0, branches=())
    elsewhere = await commit(rewritten.hub.git, None, "a history of its own", {"other.txt": "o\n"})
    await rewritten.store.flush(lambda: RunState(run_id="r1", request="q", target_branch="main", start_commit=elsewhere),
                                "started somewhere else")
    plan = await plan_reset(rewritten.hub, rewritten.store)
    assert plan.rewind is None and plan.why_not_rewind == (
        f"its history no longer contains the recorded start {elsewhere[:10]}")


async def test_a_refusal_or_no_one_to_ask_changes_nothing(tmp_path: Path) -> None:
    w = await world(tmp_path)
    before, hub_before = refs(w.target), refs(w.hub.path)

    assert not await reset(w.hub, w.store, yes=False, confirm=None, show=w.show, emit=w.sink)
    assert w.shown[-1] == "--reset: nothing was changed (no terminal to ask on; pass --yes)"
    assert not await reset(w.hub, w.store, yes=False, confirm=confirmer(w, False), show=w.show, emit=w.sink)
    assert w.shown[-1] == "--reset: nothing was changed"

    assert w.asked == ["Delete these (backups are kept)?"]
    assert w.shown[0].startswith("--reset would:\n  - delete the recorded run state")
    assert refs(w.target) == before and refs(w.hub.path) == hub_before and w.sink.events == []


async def test_a_confirmation_deletes_and_backs_up_but_never_rewinds(tmp_path: Path) -> None:
    w = await world(tmp_path)
    tip, state = await w.hub.tip(), await w.hub.git.rev_parse(w.store.ref)

    assert await reset(w.hub, w.store, yes=False, confirm=confirmer(w, True), show=w.show, emit=w.sink)

    after = refs(w.target)
    backup = {r.split("/", 4)[4]: sha for r, sha in after.items() if r.startswith("refs/longshot/backup/")}
    assert backup == {"state/main": state, "heads/worker/a": w.branches["worker/a"],
                      "heads/worker/b": w.branches["worker/b"]}
    assert after["refs/heads/main"] == tip and await w.hub.tip() == tip  # not rewound
    assert not [r for r in {**after, **refs(w.hub.path)} if r.startswith(("refs/heads/worker/", "refs/longshot/state/",
                                                                          "refs/longshot/origin/state/"))]
    namespace = "/".join(next(r for r in after if r.startswith("refs/longshot/backup/")).split("/")[:4])
    assert w.notes() == [f"reset: backed up 3 refs under {namespace}/", "reset: deleted 2 worker branches", "reset: deleted the recorded run state",
                         f"reset: left main at {tip[:10]}: rewinding it needs --yes"]
    assert await StateStore(w.hub, w.sink, CrashPoints()).load() is None


async def test_yes_rewinds_the_target_and_keeps_its_old_tip_in_the_backup(tmp_path: Path) -> None:
    w = await world(tmp_path, landed=2)
    tip = await w.hub.tip()

    assert await reset(w.hub, w.store, yes=True, confirm=confirmer(w, False), show=w.show, emit=w.sink)

    assert w.asked == []  # --yes asks nobody
    after = refs(w.target)
    assert after["refs/heads/main"] == w.start and await w.hub.tip() == w.start
    backup = next(r for r in after if r.startswith("refs/longshot/backup/") and r.endswith("/heads/main"))
    assert after[backup] == tip
    assert w.notes()[-1] == f"reset: rewound main from {tip[:10]} to {w.start[:10]} (backup: {backup})"
    assert (await plan_reset(w.hub, w.store)).empty  # a second reset finds nothing left


async def test_a_commit_pushed_meanwhile_is_never_thrown_away(tmp_path: Path) -> None:
    w = await world(tmp_path, branches=())
    plan = await plan_reset(w.hub, w.store)
    other = await open_hub(tmp_path, w.target, "another-machine")
    newer = await land(other, "landed elsewhere after the plan was shown", {"late.txt": "late\n"})

    with pytest.raises(GitError, match="stale info"):
        await apply_reset(w.hub, w.store, plan, rewind=True)

    assert git("rev-parse", "main", cwd=w.target) == newer
    assert await w.hub.tip() == plan.rewind[0]  # type: ignore[index]  # the hub follows only what the remote took


async def test_a_worker_branch_moved_meanwhile_is_not_deleted(tmp_path: Path) -> None:
    w = await world(tmp_path, branches=("a",), landed=0)
    plan = await plan_reset(w.hub, w.store)
    moved = await commit(w.hub.git, w.branches["worker/a"], "more work, pushed after the plan was shown")
    await w.hub.git.run("push", "--quiet", "origin", f"{moved}:refs/heads/worker/a")

    with pytest.raises(GitError, match="stale info"):
        await apply_reset(w.hub, w.store, plan, rewind=False)

    assert git("rev-parse", "worker/a", cwd=w.target) == moved


async def test_branches_the_target_does_not_hold_are_deleted_here_only(tmp_path: Path) -> None:
    """Worker branches that never reached the target (their publish failed), or that someone
    already deleted there, are still the hub's to delete; the reset must not fail on them."""
    w = await world(tmp_path, branches=("a", "b", "c"), publish=False)
    await w.hub.git.run("push", "--quiet", "origin", f"{w.branches['worker/b']}:refs/heads/worker/b")
    plan = await plan_reset(w.hub, w.store)
    assert [b for b, _ in plan.branches] == ["worker/a", "worker/b", "worker/c"]

    done = await apply_reset(w.hub, w.store, plan, rewind=False)

    assert "deleted 3 worker branches" in done
    assert not refs(w.target, "refs/heads/worker/") and not refs(w.hub.path, "refs/heads/worker/")
    assert len(refs(w.target, f"{plan.backup}/heads/worker/")) == 3


async def test_a_working_copy_target_keeps_worker_branches_and_results_under_refs_longshot(
        tmp_path: Path) -> None:
    """A local repository with the branch checked out: worker branches live under
    ``refs/longshot/branches/`` and landed work under ``refs/longshot/result/main``; the
    user's own branch and working tree are never touched by a reset."""
    user = tmp_path / "user"
    git("clone", "--quiet", str(make_remote(tmp_path, {"README.md": "mine\n"})), str(user), cwd=tmp_path)
    start = git("rev-parse", "main", cwd=user)
    hub = await open_hub(tmp_path, user)
    assert hub.checkout == user and hub.remote_branch("worker/a") == "refs/longshot/branches/worker/a"
    sink = MemorySink()
    store = StateStore(hub, sink, CrashPoints())
    work = await commit(hub.git, start, "work of a", {"a.txt": "a\n"})
    await hub.git.run("update-ref", "refs/heads/worker/a", work)
    store.mark("task.created", branch="worker/a")
    await store.flush(lambda: RunState(run_id="r1", request="q", target_branch="main", start_commit=start), "run started")
    result = await land(hub, "landed", {"b.txt": "b\n"})
    assert refs(user, "refs/longshot/branches/", "refs/longshot/result/") == {
        "refs/longshot/branches/worker/a": work, "refs/longshot/result/main": result}

    assert await reset(hub, store, yes=True, confirm=None, show=lambda _: None, emit=sink)

    left = refs(user)
    assert left["refs/longshot/result/main"] == start and left["refs/heads/main"] == start
    assert "refs/longshot/branches/worker/a" not in left and (user / "README.md").read_text() == "mine\n"
    assert any(r.endswith("/heads/worker/a") and sha == work for r, sha in left.items())


def test_an_empty_plan_says_nothing_and_a_plan_with_anything_names_the_backup() -> None:
    hub = Hub(Path("/nonexistent"), "/nonexistent", "trunk", ("a", "b"))
    assert ResetPlan(backup="refs/longshot/backup/x").describe(hub) == []
    only = ResetPlan(backup="refs/longshot/backup/x", branches=[("worker/z", "f" * 40)])
    assert not only.empty
    assert only.describe(hub) == ["delete branch worker/z (ffffffffff)",
                                  "everything deleted or rewound is first copied under refs/longshot/backup/x/"]
