"""The feature ledger on its own: how FEATURES.json is read (the forms people write), live
updates from the bus (which task serves which feature, what landing or a complete claims),
the members of each feature, verification tasks, and the state's round trip."""

from __future__ import annotations

import json

import pytest

from longshot.events import FeatureStatus, HandoffReceived, MemorySink, MergeLanded, TaskCreated
from longshot.pipeline.features import FeatureLedger, FeatureRecord, FeatureState, parse_features
from longshot.pipeline.parse import TaskValidator
from longshot.types import Handoff, Task


def features(*items: object) -> str:
    return json.dumps({"features": list(items)})


# -- reading FEATURES.json ---------------------------------------------------------------


def test_every_way_of_naming_tests_commands_and_files_is_read() -> None:
    [spec] = parse_features(features({
        "id": "slug", "name": "Slugs", "tests": ["tests/test_slug.py", "pytest tests/test_more.py"],
        "test_command": "npm test", "verify": "", "acceptance": "`tests/test_edge.py` passes; `make check` passes",
        "module": "wordkit/slug.py", "files": ["wordkit/util.py", "../escape.py", "/abs.py"], "scope": "docs",
    }))
    assert spec.id == "slug" and spec.name == "Slugs" and spec.asked
    assert spec.tests == ["tests/test_slug.py", "tests/test_edge.py"]
    assert spec.commands == ["pytest tests/test_more.py", "npm test", "make check"]
    assert spec.files == ["wordkit/slug.py", "wordkit/util.py", "docs"]  # paths leaving the repository dropped


def test_a_bare_list_of_names_makes_ids_and_repeated_ids_stay_apart() -> None:
    specs = parse_features(json.dumps(["Parse dates", {"title": "Parse dates"}, {"description": "x" * 300},
                                       {"id": "same"}, {"id": "same"}, 42, None]))
    assert [s.id for s in specs] == ["parse-dates", "parse-dates-2", "x" * 40, "same", "same-5"]
    assert specs[1].name == "Parse dates" and len(specs[2].name) == 200


def test_a_nameless_feature_gets_a_numbered_id_and_deferred_ones_are_not_asked() -> None:
    specs = parse_features(features({"status": "Deferred"}, {"id": "now", "status": "todo"}))
    assert [(s.id, s.asked) for s in specs] == [("feature-1", False), ("now", True)]


@pytest.mark.parametrize("text", ["{", '{"features": {"a": 1}}', '"features"', "3"])
def test_an_unusable_file_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_features(text)


# -- live updates ------------------------------------------------------------------------


def created(task_id: str, feature: str | None = None, parent: str | None = None, kind: str = "task") -> TaskCreated:
    return TaskCreated(task_id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", feature=feature,
                       parent=parent, kind=kind)  # type: ignore[arg-type]


def declared(*ids: str) -> tuple[FeatureLedger, MemorySink]:
    sink = MemorySink()
    ledger = FeatureLedger(sink)
    ledger.declare(parse_features(features(*({"id": i, "tests": [f"tests/test_{i}.py"]} for i in ids))))
    return ledger, sink


def test_declared_features_start_missing_and_gather_their_tasks_and_landings() -> None:
    ledger, sink = declared("a", "b")
    assert [(e.feature, e.status, e.before) for e in sink.events] == [("a", "missing", None), ("b", "missing", None)]
    ledger(created("t1", "a"))
    ledger(created("t1-sub-1", parent="t1"))  # a subtask that names no feature ...
    ledger(created("t9", "not-declared"))  # the planner may not invent one: ignored
    ledger(MergeLanded(task_id="t1-sub-1", commit="abcdef1234567890", branch="worker/t1-sub-1"))
    a = ledger.records["a"]
    assert a.tasks == ["t1"] and a.commits == ["abcdef1234567890"]  # ... lands for its parent's
    assert a.status == "claimed" and a.evidence.startswith("landed in abcdef1234;")
    assert set(ledger.records) == {"a", "b"} and ledger.records["b"].status == "missing"
    last = sink.of_type(FeatureStatus)[-1]
    assert (last.feature, last.before, last.status) == ("a", "missing", "claimed")


def test_a_complete_handoff_claims_its_feature_and_nothing_is_announced_twice() -> None:
    ledger, sink = declared("a")
    ledger(created("t1", "a"))
    before = len(sink.events)
    for _ in range(2):
        ledger(HandoffReceived(task_id="t1", handoff=Handoff(task_id="t1", status="complete", summary="s")))
    assert ledger.records["a"].status == "claimed" and "a worker said complete" in ledger.records["a"].evidence
    assert len(sink.events) == before + 1
    ledger(HandoffReceived(task_id="t2", handoff=Handoff(task_id="t2", status="complete", summary="s")))
    assert len(sink.events) == before + 1  # a task of no feature


def test_a_partial_handoff_claims_nothing() -> None:
    ledger, _ = declared("a")
    ledger(created("t1", "a"))
    ledger(HandoffReceived(task_id="t1", handoff=Handoff(task_id="t1", status="partial", summary="s")))
    assert ledger.records["a"].status == "missing"


def test_without_features_json_each_top_level_task_is_a_feature() -> None:
    sink = MemorySink()
    ledger = FeatureLedger(sink)
    ledger(created("t1"))
    ledger(created("t1-sub-1", parent="t1"))
    ledger(created("fix-1", kind="fix"))  # not a planned item
    ledger(created("t2", "search"))  # the planner named one: it is one
    assert not ledger.declared
    assert {f: r.tasks for f, r in ledger.records.items()} == {"t1": ["t1", "t1-sub-1"], "search": ["t2"]}


# -- members, verification, state ---------------------------------------------------------


def task(task_id: str, **extra: object) -> Task:
    return Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", **extra)  # type: ignore[arg-type]


def test_members_follow_parents_continuations_and_a_fixs_failures() -> None:
    ledger, _ = declared("a", "b")
    tasks = [task("t1", feature="a"), task("t1-sub-1", parent="t1"), task("t2", continue_from="t1-sub-1"),
             task("t3", feature="ghost"), task("fix-1", kind="fix", fixes=["test tests/test_b.py::test_x"]),
             task("fix-2", kind="fix", fixes=["build error"]), task("t4")]
    assert ledger.members(tasks) == {"a": ["t1", "t1-sub-1", "t2"], "b": ["fix-1"]}
    plain = FeatureLedger(MemorySink())
    assert plain.members(tasks) == {"a": ["t1", "t1-sub-1", "t2"], "ghost": ["t3"], "t4": ["t4"]}


def worked(ledger: FeatureLedger, feature: str, task_id: str, commit: str | None) -> None:
    """``task_id`` served ``feature`` and landed ``commit`` (or only said complete)."""
    ledger(created(task_id, feature))
    if commit:
        ledger(MergeLanded(task_id=task_id, commit=commit, branch=f"worker/{task_id}"))
    else:
        ledger(HandoffReceived(task_id=task_id, handoff=Handoff(task_id=task_id, status="complete", summary="s")))


def test_verification_tasks_go_to_claimed_landed_asked_features_once_each() -> None:
    sink = MemorySink()
    ledger = FeatureLedger(sink)
    ledger.declare(parse_features(features(
        {"id": "a", "name": "Adding", "files": ["calc.py"], "tests": ["tests/test_a.py"], "test_command": "make a"},
        {"id": "b"}, {"id": "c"}, {"id": "d", "status": "deferred"})))
    worked(ledger, "a", "t1", "1" * 40)
    worked(ledger, "b", "t2", None)  # said complete, nothing landed: nothing to test
    worked(ledger, "d", "t4", "2" * 40)
    assert {f: r.status for f, r in ledger.records.items()} == {"a": "claimed", "b": "claimed", "c": "missing",
                                                               "d": "claimed"}
    validator = TaskValidator(prefix="worker/", main_branch="main", known_ids={"verify-a"})
    [made] = ledger.verification_tasks(validator, "worker/")
    assert (made.id, made.kind, made.priority, made.feature, made.atomic) == ("verify-a-2", "verify", 1, "a", True)
    assert made.scope == ["calc.py", "tests/test_a.py"] and made.acceptance == "`make a` passes"
    assert "Feature a (Adding) landed in 1111111111 (tasks t1)" in made.description
    assert "Write the test named for it (tests/test_a.py, make a)" in made.description
    assert made.branch in validator.known_branches and "verify-a-2" in validator.known_ids
    assert ledger.verification_tasks(validator, "worker/") == []  # once per run
    assert [r.id for r in ledger.not_verified()] == ["a", "b", "c"]  # d was not asked for


def test_the_state_round_trips_and_a_snapshot_does_not_move_with_the_ledger() -> None:
    ledger, _ = declared("a")
    ledger(created("t1", "a"))
    saved = ledger.snapshot()
    ledger(MergeLanded(task_id="t1", commit="c" * 40, branch="worker/t1"))
    assert saved.records[0].status == "missing" and saved.records[0].commits == []
    sink = MemorySink()
    resumed = FeatureLedger(sink)
    resumed.restore(FeatureState.model_validate_json(ledger.snapshot().model_dump_json()))
    assert resumed.declared and resumed.records["a"].status == "claimed"
    assert [(e.feature, e.status) for e in sink.events] == [("a", "claimed")]  # re-announced
    resumed(created("t1-sub-1", parent="t1"))
    resumed(MergeLanded(task_id="t1-sub-1", commit="d" * 40, branch="worker/t1-sub-1"))
    assert resumed.records["a"].commits == ["c" * 40, "d" * 40]  # the restored tasks still lead to it
    assert isinstance(resumed.records["a"], FeatureRecord)
