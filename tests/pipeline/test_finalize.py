"""The verdict: exit 0 only for green checks, nothing unlanded, no run error and every asked feature
verified; outcomes of single tasks (failed, unchanged, superseded) never make it 1 on their own."""

from __future__ import annotations

import pytest

from longshot.events import MemorySink, RunWarning
from longshot.pipeline.features import FeatureRecord
from longshot.pipeline.finalize import NO_CHECKS, Account, verdict
from longshot.types import CheckResult, Task, TaskStatus

OK = CheckResult(command="pytest -q", exit_code=0)
RED = CheckResult(command="pytest -q", exit_code=1)


def task(id: str, status: TaskStatus) -> Task:
    made = Task(id=id, description=f"do {id}", branch=f"worker/{id}")
    made.status = status
    return made


def judge(**fields: object) -> tuple[int, bool, str, MemorySink]:
    sink = MemorySink()
    account = Account(**{"tasks": [task("a", TaskStatus.LANDED)], "checks": [OK], "unlanded": {}, **fields})  # type: ignore[arg-type]
    v = verdict(account, sink)
    return v.exit_code, v.green, v.summary, sink


def test_green_checks_and_everything_landed_is_exit_0() -> None:
    code, green, _, sink = judge()
    assert (code, green) == (0, True) and sink.events == []


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.UNCHANGED,
                                    TaskStatus.SUPERSEDED, TaskStatus.COMPLETED, TaskStatus.CANCELLED])
def test_an_outcome_of_one_task_does_not_fail_the_run(status: TaskStatus) -> None:
    code, green, summary, _ = judge(tasks=[task("a", TaskStatus.LANDED), task("b", status)])
    assert (code, green) == (0, True)
    assert f"1 {status}" in summary


def test_no_checks_known_is_never_green_and_says_so_with_its_code() -> None:
    code, green, summary, sink = judge(checks=None)
    assert (code, green) == (1, False)
    assert [(w.code, w.message) for w in sink.of_type(RunWarning)] == [("checks.none", NO_CHECKS)]
    assert NO_CHECKS in summary


def test_checks_none_on_purpose_may_exit_0_but_is_not_called_green() -> None:
    code, green, _, sink = judge(checks=[])
    assert (code, green) == (0, False) and sink.events == []


@pytest.mark.parametrize("fields, says", [
    ({"checks": [OK, RED]}, "failing check: pytest -q (exit 1)"),
    ({"failures": ["conflict markers in a.py"]}, "still broken: conflict markers in a.py"),
    ({"unlanded": {"a2": "merge conflict"}, "tasks": [task("a2", TaskStatus.FAILED)]}, "not landed: a2 (merge conflict)"),
    ({"errors": ["stopped early: RUN_MAX_TOKENS spent"]}, "stopped early: RUN_MAX_TOKENS spent"),
    ({"features": [FeatureRecord(id="mul", name="multiply", status="claimed", evidence="no test ran")]},
     "feature mul (multiply) is claimed: no test ran"),
])
def test_each_reason_alone_makes_exit_1_and_is_named(fields: dict[str, object], says: str) -> None:
    code, _, summary, _ = judge(**fields)
    assert code == 1
    assert says in summary


def test_work_that_landed_or_was_carried_on_is_not_unlanded() -> None:
    tasks = [task("a", TaskStatus.LANDED), task("b", TaskStatus.SUPERSEDED)]
    code, _, summary, _ = judge(tasks=tasks, unlanded={"a": "queued", "b": "conflict"})
    assert code == 0 and "not landed" not in summary


def test_a_feature_not_asked_for_does_not_decide_the_exit_code() -> None:
    code, _, _, _ = judge(features=[FeatureRecord(id="x", status="missing", asked=False),
                                    FeatureRecord(id="y", status="verified")])
    assert code == 0


def test_an_unknown_price_is_never_a_cost_of_zero() -> None:
    _, _, priced, _ = judge(tokens=1200, cost_usd=0.25)
    _, _, unknown, _ = judge(tokens=1200, cost_usd=0.0, unpriced=["local-model", "other"])
    assert "tokens: 1,200; cost: $0.2500" in priced
    assert "cost: unknown (no price for local-model, other)" in unknown and "$0.0000" not in unknown
