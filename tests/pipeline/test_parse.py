"""Planner answers → validated tasks: `parse_plan`, `TaskValidator`, and fuzzed plans (T24)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from longshot.errors import PlanParseError
from longshot.git import legal_branch_name
from longshot.pipeline.parse import TaskValidator, parse_plan, safe_branch_name
from longshot.types import RawTask, Task

PREFIX = "worker/"


def raw(description: str = "do something", **kw: object) -> RawTask:
    return RawTask(description=description, **kw)


def validator(**kw: object) -> TaskValidator:
    return TaskValidator(prefix=PREFIX, main_branch="main", **kw)  # type: ignore[arg-type]


# -- parse_plan ----------------------------------------------------------------------


def test_plain_object() -> None:
    answer = parse_plan(json.dumps({"scratchpad": "think", "tasks": [
        {"id": "a", "description": "first", "scope": ["src/a.py"], "priority": 2},
        {"description": "second", "depends_on": ["a"]},
    ]}))
    assert answer.scratchpad == "think"
    assert [t.description for t in answer.tasks] == ["first", "second"]
    assert answer.tasks[0].id == "a" and answer.tasks[0].priority == 2 and answer.tasks[0].scope == ["src/a.py"]
    assert answer.tasks[1].id is None and answer.tasks[1].depends_on == ["a"]


def test_fenced_json_with_prose_around() -> None:
    text = ("Sure! Here is the plan.\n\n```json\n"
            + json.dumps({"scratchpad": "s", "tasks": [{"description": "fenced"}]}, indent=2)
            + "\n```\n\nLet me know if {you} want [changes].")
    answer = parse_plan(text)
    assert [t.description for t in answer.tasks] == ["fenced"]
    assert answer.scratchpad == "s"


def test_bare_array() -> None:
    answer = parse_plan('[{"description": "x"}, {"description": "y", "id": "t-y"}]')
    assert answer.scratchpad == ""
    assert [(t.id, t.description) for t in answer.tasks] == [(None, "x"), ("t-y", "y")]


def test_prose_before_the_object() -> None:
    answer = parse_plan('I will split the work.\n{"scratchpad": "", "tasks": [{"description": "after prose"}]}')
    assert [t.description for t in answer.tasks] == ["after prose"]


@pytest.mark.parametrize("text", ["", None, "   \n  "])
def test_empty_answer(text: str | None) -> None:
    with pytest.raises(PlanParseError, match="empty"):
        parse_plan(text)


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(PlanParseError) as info:
        parse_plan('{"scratchpad": "x" "tasks": 1}')
    assert "line 1 column 20" in str(info.value)
    with pytest.raises(PlanParseError) as info:
        parse_plan('{\n  "tasks":\n}')
    assert "line 3 column 1" in str(info.value)


def test_invalid_json_position_is_where_the_answer_goes_wrong() -> None:
    """The position must point into the model's answer, not into a substring of it."""
    text = '{"tasks": [{"description": "a"},]}'
    assert text.index("]") + 1 == 33
    with pytest.raises(PlanParseError) as info:
        parse_plan(text)
    assert "line 1 column 33" in str(info.value), str(info.value)


def test_invalid_json_position_in_a_fenced_block() -> None:
    text = 'Plan:\n```json\n{"tasks": [}\n```'
    with pytest.raises(PlanParseError) as info:
        parse_plan(text)
    # column 12 of the JSON line (line 1 of the block, line 3 of the answer)
    assert re.search(r"line [13] column 12\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("value", ['{"scratchpad": "no tasks"}', '{"tasks": "none"}', '{"tasks": {}}'])
def test_object_without_a_tasks_list(value: str) -> None:
    with pytest.raises(PlanParseError, match='"tasks"'):
        parse_plan(value)


@pytest.mark.parametrize("value", ['"just a string"', "42", "null", "true"])
def test_json_that_is_not_an_object(value: str) -> None:
    with pytest.raises(PlanParseError):
        parse_plan(value)


def test_task_missing_description_among_valid_ones() -> None:
    answer = parse_plan(json.dumps({"tasks": [
        {"description": "good one"}, {"id": "bad", "scope": ["x"]}, {"description": "good two"},
    ]}))
    assert [t.description for t in answer.tasks] == ["good one", "good two"]


def test_all_tasks_invalid() -> None:
    with pytest.raises(PlanParseError) as info:
        parse_plan(json.dumps({"tasks": [{"id": "a"}, "not a task", {"description": 5, "priority": "high"}]}))
    message = str(info.value)
    assert "no usable task" in message
    assert "tasks[0].description" in message


def test_empty_task_list_means_done() -> None:
    answer = parse_plan('{"scratchpad": "all done", "tasks": []}')
    assert answer.tasks == [] and answer.scratchpad == "all done"


def test_non_string_scratchpad_is_kept_as_json() -> None:
    answer = parse_plan('{"scratchpad": {"k": 1}, "tasks": []}')
    assert json.loads(answer.scratchpad) == {"k": 1}


# -- TaskValidator -------------------------------------------------------------------


def test_generated_ids_and_branches() -> None:
    v = validator()
    tasks, rejected = v.validate([raw("Fix the Parser!"), raw("Add tests for   x"), raw("???")])
    assert rejected == []
    assert [t.id for t in tasks] == ["task-001", "task-002", "task-003"]
    assert [t.branch for t in tasks] == [
        "worker/task-001-fix-the-parser", "worker/task-002-add-tests-for-x", "worker/task-003-task"]
    assert all(legal_branch_name(t.branch) for t in tasks)
    # A later batch continues the numbering.
    more, _ = v.validate([raw("later")])
    assert more[0].id == "task-004"


def test_explicit_id_and_branch_kept() -> None:
    tasks, rejected = validator().validate([raw("x", id="parser", branch="worker/parser-fix", priority=1)])
    assert rejected == []
    assert (tasks[0].id, tasks[0].branch, tasks[0].priority) == ("parser", "worker/parser-fix", 1)


def test_generated_id_does_not_take_an_id_named_later_in_the_batch() -> None:
    """The planner named 'task-001' itself; a generated id must not steal it."""
    tasks, rejected = validator().validate([
        raw("unnamed"), raw("named", id="task-001"), raw("uses it", id="c", depends_on=["task-001"])])
    assert [r.reason for r in rejected] == []
    by_id = {t.id: t for t in tasks}
    assert by_id["task-001"].description == "named"


def test_duplicate_id_in_one_batch() -> None:
    tasks, rejected = validator().validate([raw("one", id="a"), raw("two", id="a")])
    assert [t.description for t in tasks] == ["one"]
    assert len(rejected) == 1 and "duplicate" in rejected[0].reason and rejected[0].task_id == "a"


def test_duplicate_id_across_batches() -> None:
    v = validator()
    v.validate([raw("one", id="a")])
    tasks, rejected = v.validate([raw("again", id="a")])
    assert tasks == [] and "duplicate" in rejected[0].reason


@pytest.mark.parametrize("scope", ["../x", "/etc/passwd", "~/.ssh", "a/../../b", ".git/config", ".git",
                                   "./.git/hooks/pre-commit", "a\x00b", "..", ".", "", "C:\\x", "\\\\server\\x"])
def test_scope_outside_the_repository(scope: str) -> None:
    tasks, rejected = validator().validate([raw("x", id="a", scope=["ok/file.py", scope])])
    assert tasks == []
    assert "scope" in rejected[0].reason


def test_scope_is_normalised() -> None:
    tasks, _ = validator().validate([raw("x", scope=["./src//a.py", "src/b/../c.py", "docs/"])])
    assert tasks[0].scope == ["src/a.py", "src/c.py", "docs"]


@pytest.mark.parametrize("branch", ["main", "refs/heads/main", "worker/", "worker/main", "other/x", "$(id)/x",
                                    "-worker/x", "worker"])
def test_branch_outside_the_worker_namespace_rejected(branch: str) -> None:
    tasks, rejected = validator().validate([raw("x", id="a", branch=branch)])
    assert tasks == []
    assert len(rejected) == 1 and "branch" in rejected[0].reason


UNSAFE_BRANCHES = ["worker/a..b", "worker/x.lock", "worker/a b", "worker/a@{1}", "worker/a~1", "worker//x", "worker/x/",
                   "worker/.x", "worker/x.", "worker/\x00", "worker/$(touch pwned)", "worker/`id`", "worker/a;rm -rf ~",
                   "worker/a|b", "worker/a&b", "worker/a>b", "worker/a<b", "worker/-rf", "worker/x/-y", "worker/a'b",
                   'worker/a"b', "worker/a\nb", "worker/a\\b", "worker/a$HOME", "worker/a*", "worker/a?", "worker/a[1]",
                   "worker/a!b", "worker/é", "worker/a#b", "worker/a%b", "worker/a,b", "worker/a=b", "worker/a+b",
                   "worker/a{b}", "worker/a(b)", "worker/" + "x" * 300, "worker/a\tb", "worker/a:b", "worker/a^b"]


@pytest.mark.parametrize("branch", UNSAFE_BRANCHES)
def test_unsafe_branch_replaced_by_a_generated_name_and_the_model_told(branch: str) -> None:
    v = validator()
    tasks, rejected = v.validate([raw("Fix the parser", id="a", branch=branch)])
    assert rejected == []
    assert tasks[0].branch == "worker/a-fix-the-parser"
    notices = v.take_notices()
    assert len(notices) == 1 and "was replaced by 'worker/a-fix-the-parser'" in notices[0]
    assert v.take_notices() == []


@pytest.mark.parametrize("branch", ["worker/parser-fix", "worker/a/b.c_d-1", "worker/T1.2"])
def test_safe_branch_kept(branch: str) -> None:
    assert safe_branch_name(branch)
    v = validator()
    tasks, _ = v.validate([raw("x", id="a", branch=branch)])
    assert tasks[0].branch == branch and v.take_notices() == []


def test_model_text_is_capped_before_it_becomes_a_task() -> None:
    big = "x" * 3_000_000
    answer = parse_plan(json.dumps({"scratchpad": big, "tasks": [
        {"id": "a", "description": big, "acceptance": big, "scope": [f"f{i}.py" for i in range(10_000)],
         "fixes": ["F1"] * 5000}] + [{"description": "d"}] * 5000}))
    assert len(answer.scratchpad) < 9000 and answer.scratchpad.endswith("more characters cut]")
    assert len(answer.tasks) == 1000
    tasks, _ = validator(max_tasks=5000).validate(answer.tasks[:1])
    task = tasks[0]
    assert len(task.description) < 9000 and len(task.acceptance) < 5000
    assert len(task.scope) == 200 and len(answer.tasks[0].fixes) == 100
    assert len(task.model_dump_json()) < 30_000


def test_branch_reuse_rejected() -> None:
    v = validator()
    first, _ = v.validate([raw("one", branch="worker/shared")])
    tasks, rejected = v.validate([raw("two", branch="worker/shared")])
    assert [t.branch for t in first] == ["worker/shared"]
    assert tasks == [] and "already used" in rejected[0].reason
    # also within one batch
    tasks, rejected = validator().validate([raw("a", branch="worker/b"), raw("b", branch="worker/b")])
    assert len(tasks) == 1 and "already used" in rejected[0].reason


def test_unknown_dependency_rejected() -> None:
    tasks, rejected = validator().validate([raw("x", id="a", depends_on=["ghost"])])
    assert tasks == [] and "ghost" in rejected[0].reason


def test_dependency_on_a_known_task_from_an_earlier_batch() -> None:
    v = validator()
    v.validate([raw("first", id="a")])
    tasks, rejected = v.validate([raw("second", id="b", depends_on=["a"])])
    assert rejected == [] and tasks[0].depends_on == ["a"]


def test_dependency_on_a_rejected_task_rejected() -> None:
    tasks, rejected = validator().validate([
        raw("bad scope", id="a", scope=["/etc"]),
        raw("depends on bad", id="b", depends_on=["a"]),
        raw("depends on dependent", id="c", depends_on=["b"]),
        raw("fine", id="d"),
    ])
    assert [t.id for t in tasks] == ["d"]
    reasons = {r.task_id: r.reason for r in rejected}
    assert set(reasons) == {"a", "b", "c"}
    assert "'a'" in reasons["b"]


def test_rejected_dependents_free_their_ids() -> None:
    v = validator()
    v.validate([raw("bad", id="a", scope=["../x"]), raw("dep", id="b", depends_on=["a"])])
    tasks, rejected = v.validate([raw("b again", id="b")])
    assert [t.id for t in tasks] == ["b"] and rejected == []


def test_two_cycle_rejected() -> None:
    tasks, rejected = validator().validate([
        raw("x", id="a", depends_on=["b"]), raw("y", id="b", depends_on=["a"]), raw("z", id="c")])
    assert [t.id for t in tasks] == ["c"]
    assert {r.task_id for r in rejected} == {"a", "b"}
    assert all("cycle" in r.reason for r in rejected)


def test_self_dependency_rejected() -> None:
    tasks, rejected = validator().validate([raw("x", id="a", depends_on=["a"])])
    assert tasks == [] and "itself" in rejected[0].reason


def test_forward_dependency_in_a_batch_accepted() -> None:
    tasks, rejected = validator().validate([raw("x", id="a", depends_on=["b", "b"]), raw("y", id="b")])
    assert rejected == []
    assert {t.id: t.depends_on for t in tasks} == {"a": ["b"], "b": []}


def test_max_tasks_cap() -> None:
    tasks, rejected = validator(max_tasks=3).validate([raw(f"t{i}") for i in range(10)])
    assert len(tasks) == 3 and len(rejected) == 7
    assert all("more than 3" in r.reason for r in rejected)


def test_ten_thousand_tasks_are_capped() -> None:
    raws = [raw(f"task number {i}", id=f"t{i}", depends_on=[f"t{i - 1}"] if i else []) for i in range(10_000)]
    tasks, rejected = validator().validate(raws)
    assert len(tasks) == 200
    assert len(tasks) + len(rejected) == 10_000


@pytest.mark.parametrize("bad_id", ["a/b", "-a", "a b", "", "x" * 65, "a.lock", "../x", "a\x00"])
def test_invalid_ids_rejected(bad_id: str) -> None:
    tasks, rejected = validator().validate([raw("x", id=bad_id)])
    assert tasks == [] and "invalid id" in rejected[0].reason


@pytest.mark.parametrize("description", ["", "   ", "a\x00b"])
def test_empty_or_invalid_description(description: str) -> None:
    tasks, rejected = validator().validate([raw(description)])
    assert tasks == [] and "description" in rejected[0].reason


@pytest.mark.parametrize("task_id", ["a..b", "v1..2", "x...y"])
def test_accepted_id_always_gives_a_legal_branch(task_id: str) -> None:
    """An id the validator accepts must not produce an illegal generated branch name."""
    tasks, _ = validator().validate([raw("describe", id=task_id)])
    for t in tasks:
        assert legal_branch_name(t.branch), t.branch


# -- T24: fuzzed planner output ------------------------------------------------------

_ID_LIST = ["a", "b", "c", "d", "e", "task-001", "task-002", "x.y", "a..b", "a.lock", "../x", "-x", "", "a b", "Z9"]
_IDS = st.sampled_from(_ID_LIST)
_GOOD_SCOPES = st.sampled_from(["src/a.py", "docs/", "./x", "a/../b", "ok/dir/file", "é/ü.txt"])
_BAD_SCOPES = st.sampled_from(["../x", "a/../../b", "/etc/passwd", "~/.ssh", ".git/config", "a\x00b", "", ".",
                               "C:\\win", "./.git"])
_SCOPES = st.one_of(_GOOD_SCOPES, _GOOD_SCOPES, _GOOD_SCOPES, _BAD_SCOPES)
_BRANCHES = st.one_of(
    st.none(), st.none(), st.none(), st.none(),
    st.sampled_from(["main", "refs/heads/main", "worker/", "worker/main", "worker/a..b", "worker/x.lock",
                     "other/x", "worker/a b", "worker/a@{1}", "worker/ok", "worker/ok", "worker/x/y",
                     "worker/-", "worker/\x00", "worker/é", "worker/.x", "worker/x.", "HEAD", "worker/@"]),
    st.text(max_size=8).map(lambda s: PREFIX + s),
)


@st.composite
def planner_answers(draw: st.DrawFn, id_strategy: st.SearchStrategy[str] = _IDS) -> list[dict[str, object]]:
    n = draw(st.integers(0, 20))
    ids = draw(st.lists(st.one_of(st.none(), id_strategy), min_size=n, max_size=n))
    named = [i for i in ids if i] or ["ghost"]
    items: list[dict[str, object]] = []
    for task_id in ids:
        item: dict[str, object] = {
            "description": draw(st.one_of(st.sampled_from(["fix it", "Add X", "  ", "a\x00b", "é"]),
                                          st.text(max_size=8))),
            "scope": draw(st.lists(_SCOPES, max_size=2)),
            "depends_on": draw(st.lists(st.one_of(st.sampled_from(named), st.sampled_from(named), id_strategy), max_size=2)),
            "priority": draw(st.integers(-3, 12)),
        }
        if task_id is not None:
            item["id"] = task_id
        branch = draw(_BRANCHES)
        if branch is not None:
            item["branch"] = branch
        items.append(item)
    return items


def _check_batch(v: TaskValidator, tasks: list[Task], known_before: set[str]) -> None:
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids)), "duplicate ids accepted"
    assert not set(ids) & known_before, "an id of an earlier batch was accepted again"
    for t in tasks:
        assert t.branch.startswith(PREFIX), t.branch
        assert t.branch.removeprefix(PREFIX) not in ("", "main"), t.branch
        assert legal_branch_name(t.branch), t.branch
        for p in t.scope:
            assert not p.startswith(("/", "..", "~")) and "\x00" not in p, p
            assert p != ".git" and not p.startswith(".git/"), p
        for dep in t.depends_on:
            assert dep in ids or dep in known_before, f"{t.id} depends on {dep!r}, neither accepted nor known"
    # no accepted task is on (or behind) a dependency cycle within the batch
    batch = {t.id: t for t in tasks}
    state: dict[str, int] = {}

    def visit(task_id: str) -> None:
        if task_id not in batch:
            return
        assert state.get(task_id) != 1, f"dependency cycle through {task_id}"
        if state.get(task_id) == 2:
            return
        state[task_id] = 1
        for d in batch[task_id].depends_on:
            visit(d)
        state[task_id] = 2

    for task_id in batch:
        visit(task_id)


T24_SETTINGS = settings(
    max_examples=120, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: keeps a failing run fast
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@T24_SETTINGS
@given(st.lists(planner_answers(), min_size=1, max_size=3), st.integers(1, 50))
@example(batches=[[{"description": "fix it", "id": "a..b"}]], max_tasks=5)
@example(batches=[[{"description": "x", "id": "a", "depends_on": ["b"]}, {"description": "y", "id": "b",
                    "depends_on": ["a"]}, {"description": "z", "id": "c", "depends_on": ["a"]}]], max_tasks=5)
@example(batches=[[{"description": "x", "id": "a", "scope": ["../x"]}],
                  [{"description": "y", "id": "b", "depends_on": ["a"]}]], max_tasks=5)
def test_t24_fuzzed_plans(batches: list[list[dict[str, object]]], max_tasks: int) -> None:
    _run_t24(batches, max_tasks)


def _run_t24(batches: list[list[dict[str, object]]], max_tasks: int) -> None:
    v = validator(max_tasks=max_tasks)
    for items in batches:
        answer = parse_plan(json.dumps({"scratchpad": "", "tasks": items})) if items else None
        raws = answer.tasks if answer else []
        known_before = set(v.known_ids)
        tasks, rejected = v.validate(raws)  # never raises
        assert len(tasks) <= max_tasks
        assert len(tasks) + len(rejected) == len(raws)
        assert all(r.reason for r in rejected)
        _check_batch(v, tasks, known_before)
        assert {t.id for t in tasks} <= v.known_ids
