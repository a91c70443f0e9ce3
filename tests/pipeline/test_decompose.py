"""Subplanners: when a task is split, the bounds on what a subplanner may answer (scope inside
the parent's, batch size, ids it allocates), and the parent's handoff summed from its
children's. The subplanner talks to the fake model over real HTTP; files come from a real hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.events import MemorySink, TaskRejected
from longshot.pipeline.decompose import SplitRules, Subplanner, aggregate, inside, needs_split
from longshot.pipeline.parse import TaskValidator
from longshot.prompts import Prompts
from longshot.testing.fake_script import Reply, RoleScript, Turn
from longshot.types import Handoff, HandoffMetrics, Task, TaskStatus

from stagekit import conversation, open_hub
from helpers import plan_json

FILES = {"src/a.py": "a\n", "src/b.py": "b\n", "src/deep/c.py": "c\n", "lib/x.py": "x\n", "README.md": "r\n"}


def task(task_id: str = "big", scope: list[str] | None = None, **extra: object) -> Task:
    return Task(id=task_id, description=f"do {task_id}", scope=scope if scope is not None else ["src"],
                branch=f"worker/{task_id}", **extra)  # type: ignore[arg-type]


# -- when to split ----------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "split"), [
    (["a.py", "b.py", "c.py", "d.py", "e.py"], False),  # 5 files, one module ("."): at the limit
    (["a.py", "b.py", "c.py", "d.py", "e.py", "f.py"], True),  # 6 files
    (["src/a.py", "lib/b.py"], False),  # two modules
    (["src/a.py", "lib/b.py", "README.md"], True),  # three: top-level files count as the module "."
    (["src/a.py", "src/b/c.py", "src/d/e/f.py"], False),  # deep paths, one module
    ([], False),
])
def test_a_task_is_split_when_its_scope_is_broader_than_the_rules(scope: list[str], split: bool) -> None:
    assert needs_split(task(scope=scope), SplitRules()) is split


def test_an_atomic_task_or_one_at_max_depth_is_never_split() -> None:
    wide = [f"m{i}/f.py" for i in range(9)]
    rules = SplitRules(max_depth=2)
    assert needs_split(task(scope=wide, depth=1), rules)
    assert not needs_split(task(scope=wide, depth=2), rules)
    assert not needs_split(task(scope=wide, atomic=True), rules)
    assert needs_split(task(scope=["a", "b"]), SplitRules(max_files=1))


@pytest.mark.parametrize(("path", "scope", "expected"), [
    ("src/a.py", ["src"], True),
    ("src/a.py", ["src/"], True),
    ("src", ["src"], True),
    ("src/deep/c.py", ["src"], True),
    ("srcx/a.py", ["src"], False),  # a sibling whose name starts the same
    ("lib/x.py", ["src", "docs"], False),
    ("lib/x.py", ["src", "lib/x.py"], True),
    ("anything", [], False),
])
def test_inside_means_the_path_or_under_it(path: str, scope: list[str], expected: bool) -> None:
    assert inside(path, scope) is expected


# -- the subplanner ----------------------------------------------------------------------


async def subplanner(tmp_path: Path, fake_llm, answers: list[str], parent: Task | None = None,
                     rules: SplitRules | None = None) -> tuple[Subplanner, MemorySink, list[Turn]]:
    seen: list[Turn] = []

    def play(turn: Turn) -> Reply:
        seen.append(turn)
        return Reply(content=answers[min(len(seen) - 1, len(answers) - 1)])

    fake = fake_llm(RoleScript({"subplanner": play}))
    hub = await open_hub(tmp_path, FILES)
    sink = MemorySink()
    parent = parent or task(feature="search")
    validator = TaskValidator(prefix="worker/", main_branch="main", known_ids={parent.id})
    sub = Subplanner(parent, conversation(fake, hub, sink, "subplanner", task_id=parent.id), Prompts(), hub,
                     validator, sink, rules or SplitRules())
    return sub, sink, seen


def last_user(turn: Turn) -> str:
    return str(next(m["content"] for m in reversed(turn.messages) if m["role"] == "user"))


async def test_the_first_answer_empty_means_atomic_and_the_prompt_lists_only_files_in_scope(tmp_path: Path,
                                                                                             fake_llm) -> None:
    sub, sink, seen = await subplanner(tmp_path, fake_llm, [plan_json([])])
    assert await sub.first() == []
    prompt = last_user(seen[0])
    assert "src/a.py" in prompt and "src/deep/c.py" in prompt
    assert "lib/x.py" not in prompt and "README.md" not in prompt
    assert seen[0].task_id == "big" and sub.iteration == 1 and sink.of_type(TaskRejected) == []


async def test_subtasks_get_allocated_ids_the_parents_feature_and_depth_and_no_branch_of_the_model(
        tmp_path: Path, fake_llm) -> None:
    answer = plan_json([
        {"id": "one", "description": "do a", "scope": ["src/a.py"], "branch": "worker/mine"},
        {"id": "two", "description": "do b", "scope": ["src/b.py"], "depends_on": ["one"]},
    ])
    sub, sink, _ = await subplanner(tmp_path, fake_llm, [answer])
    tasks = await sub.first()
    assert [t.id for t in tasks] == ["big-sub-1", "big-sub-2"]
    assert all(t.parent == "big" and t.depth == 1 and t.feature == "search" for t in tasks)
    assert tasks[0].branch != "worker/mine" and tasks[0].branch.startswith("worker/big-sub-1")
    assert tasks[1].depends_on == ["big-sub-1"]  # the model's id of a sibling, mapped to the allocated one
    assert sink.of_type(TaskRejected) == []


@pytest.mark.parametrize("scope", [["lib/x.py"], ["src/../lib/x.py"], ["/etc/passwd"], [], ["srcx/a.py"]])
async def test_a_subtask_whose_scope_leaves_the_parents_is_rejected_and_said(tmp_path: Path, fake_llm,
                                                                             scope: list[str]) -> None:
    answer = plan_json([{"id": "out", "description": "escape", "scope": scope},
                        {"id": "in", "description": "stay", "scope": ["src/a.py"]}])
    sub, sink, _ = await subplanner(tmp_path, fake_llm, [answer])
    tasks = await sub.first()
    assert [t.id for t in tasks] == ["big-sub-1"] and tasks[0].scope == ["src/a.py"]  # ids stay dense
    rejected = sink.of_type(TaskRejected)
    assert [r.task_id for r in rejected] == ["out"]
    assert "not inside the parent's scope" in rejected[0].reason and "src" in rejected[0].reason


async def test_more_subtasks_than_max_batch_are_rejected_past_the_limit(tmp_path: Path, fake_llm) -> None:
    answer = plan_json([{"id": f"s{i}", "description": f"part {i}", "scope": ["src/a.py"]} for i in range(5)])
    sub, sink, _ = await subplanner(tmp_path, fake_llm, [answer], rules=SplitRules(max_batch=3))
    tasks = await sub.first()
    assert len(tasks) == 3
    assert [r.task_id for r in sink.of_type(TaskRejected)] == ["s3", "s4"]
    assert all("more than 3 subtasks" in r.reason for r in sink.of_type(TaskRejected))


async def test_a_subtask_the_validator_refuses_is_reported_and_the_rest_are_kept(tmp_path: Path, fake_llm) -> None:
    answer = plan_json([{"id": "a", "description": "   ", "scope": ["src/a.py"]},
                        {"id": "b", "description": "fine", "scope": ["src/b.py"], "depends_on": ["nowhere"]},
                        {"id": "c", "description": "fine too", "scope": ["src/b.py"]}])
    sub, sink, _ = await subplanner(tmp_path, fake_llm, [answer])
    tasks = await sub.first()
    assert [t.description for t in tasks] == ["fine too"]
    reasons = {r.task_id: r.reason for r in sink.of_type(TaskRejected)}
    assert "empty" in reasons["big-sub-1"] and "unknown task 'nowhere'" in reasons["big-sub-2"]


async def test_follow_up_answers_continue_the_numbering_and_map_earlier_ids(tmp_path: Path, fake_llm) -> None:
    first = plan_json([{"id": "model-a", "description": "do a", "scope": ["src/a.py"]}])
    again = plan_json([{"id": "model-b", "description": "redo a", "scope": ["src/a.py"], "replaces": "model-a",
                        "depends_on": ["model-a"]}])
    sub, _, seen = await subplanner(tmp_path, fake_llm, [first, again])
    [a] = await sub.first()
    handoffs = [{"task_id": a.id, "status": "partial", "landed": False, "summary": "half of it",
                 "concerns": ["a.py is odd"]}]
    [b] = await sub.again(handoffs)
    assert b.id == "big-sub-2" and b.replaces == "big-sub-1" and b.depends_on == ["big-sub-1"]
    prompt = last_user(seen[1])
    assert "big-sub-1 [partial] NOT landed: half of it" in prompt and "concern: a.py is odd" in prompt
    assert sub.iteration == 2


async def test_a_subtask_of_a_parent_without_a_feature_keeps_its_own(tmp_path: Path, fake_llm) -> None:
    answer = plan_json([{"id": "a", "description": "do a", "scope": ["src/a.py"], "feature": "own"}])
    sub, _, _ = await subplanner(tmp_path, fake_llm, [answer], parent=task(depth=2))
    [t] = await sub.first()
    assert t.feature == "own" and t.depth == 3


# -- the parent's handoff ----------------------------------------------------------------


def child(task_id: str, status: TaskStatus) -> Task:
    return task(task_id, ["src/a.py"], status=status)


def handoff(task_id: str, files: list[str], tokens: int, **extra: object) -> Handoff:
    return Handoff(task_id=task_id, status="complete", summary=f"{task_id} done " + "x" * 300, files_changed=files,
                   metrics=HandoffMetrics(tokens_used=tokens, lines_added=2, cost_usd=0.5), **extra)  # type: ignore[arg-type]


def test_the_parent_handoff_sums_its_childrens() -> None:
    kids = [child("p-sub-1", TaskStatus.LANDED), child("p-sub-2", TaskStatus.UNCHANGED)]
    handoffs = {"p-sub-1": handoff("p-sub-1", ["a.py", "b.py"], 100, concerns=["slow"]),
                "p-sub-2": handoff("p-sub-2", ["b.py", "c.py"], 50, suggestions=["cache it"])}
    got = aggregate(task("p"), kids, handoffs)
    assert got.task_id == "p" and got.status == "complete" and got.commit is None
    assert got.files_changed == ["a.py", "b.py", "c.py"]  # each once, in order
    assert got.concerns == ["p-sub-1: slow"] and got.suggestions == ["p-sub-2: cache it"]
    assert (got.metrics.tokens_used, got.metrics.lines_added, got.metrics.cost_usd) == (150, 4, 1.0)
    assert got.summary.startswith("split into 2 subtasks: p-sub-1 landed: p-sub-1 done")
    assert "x" * 201 not in got.summary  # each child's summary is cut


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.PARTIAL, TaskStatus.BLOCKED, TaskStatus.PENDING])
def test_the_parent_is_partial_unless_every_child_ended_well(status: TaskStatus) -> None:
    kids = [child("p-sub-1", TaskStatus.COMPLETED), child("p-sub-2", TaskStatus.SUPERSEDED), child("p-sub-3", status)]
    got = aggregate(task("p"), kids, {"p-sub-1": handoff("p-sub-1", [], 1)})
    assert got.status == "partial"
    assert f"p-sub-3 {status.value}" in got.summary  # a child without a handoff is still listed
    assert got.metrics.tokens_used == 1


@pytest.mark.parametrize("status", [TaskStatus.LANDED, TaskStatus.UNCHANGED, TaskStatus.SUPERSEDED,
                                    TaskStatus.COMPLETED])
def test_each_way_of_ending_well_counts_as_done(status: TaskStatus) -> None:
    assert aggregate(task("p"), [child("p-sub-1", status)], {}).status == "complete"


def test_a_parent_with_no_children_is_complete_and_empty() -> None:
    got = aggregate(task("p"), [], {})
    assert got.status == "complete" and got.files_changed == [] and got.summary == "split into 0 subtasks: "
