"""The run's verdict and the account the final summary gives (`pipeline/finalize.py`), line by
line: what is counted, what each kind of check result says, which tasks and reasons are
listed and how they are cut, and which facts never change the exit code."""

from __future__ import annotations

from longshot.events import MemorySink
from longshot.pipeline.features import FeatureRecord
from longshot.pipeline.finalize import NO_CHECKS, Account, Verdict, verdict
from longshot.types import CheckResult, Task, TaskStatus

OK = CheckResult(command="pytest -q", exit_code=0)
LINT = CheckResult(command="ruff check", kind="build", exit_code=0)


def task(id: str, status: TaskStatus, reason: str = "") -> Task:
    made = Task(id=id, description=f"do {id}", branch=f"worker/{id}")
    made.status, made.reason = status, reason
    return made


def run(**fields: object) -> tuple[Verdict, list[str]]:
    account = Account(**{"tasks": [], "checks": [OK], "unlanded": {}, **fields})  # type: ignore[arg-type]
    found = verdict(account, MemorySink())
    return found, found.summary.splitlines()


def test_the_summary_counts_every_status_and_names_each_check() -> None:
    tasks = [task("a", TaskStatus.LANDED), task("b", TaskStatus.LANDED), task("c", TaskStatus.UNCHANGED),
             task("d", TaskStatus.FAILED, "tests fail"), task("e", TaskStatus.BLOCKED, "needs a key"),
             task("f", TaskStatus.PARTIAL, "half"), task("g", TaskStatus.CANCELLED, "budget spent"),
             task("h", TaskStatus.FAILED)]
    found, lines = run(tasks=tasks, checks=[OK, LINT], tokens=1234567, cost_usd=1.5)

    assert (found.exit_code, found.green) == (0, True)
    assert (found.landed, found.failed, found.unlanded) == (["a", "b"], ["d", "e", "h"], [])
    assert lines == [
        "2 landed, 0 unlanded; checks green",
        "tasks: 1 blocked, 1 cancelled, 2 failed, 2 landed, 1 partial, 1 unchanged",
        "final checks: pytest -q: ok, ruff check: ok",
        "tokens: 1,234,567; cost: $1.5000",
        "d failed: tests fail", "e blocked: needs a key", "f partial: half", "g cancelled: budget spent"]


def test_each_kind_of_check_outcome_reads_as_it_is() -> None:
    _, lines = run(checks=None)
    assert lines[0].endswith("checks none ran") and lines[2] == "final checks: none known"
    assert lines[-1] == f"- {NO_CHECKS}"
    _, lines = run(checks=[])
    assert lines[0].endswith("checks none ran") and lines[2] == "final checks: none (CHECK_COMMANDS=none)"
    slow = CheckResult(command="pytest -q", exit_code=124, timed_out=True)
    found, lines = run(checks=[LINT, slow])
    assert lines[0].endswith("checks NOT green") and lines[2] == "final checks: ruff check: ok, pytest -q: FAILED"
    assert "- failing check: pytest -q (exit 124, timed out)" in lines and found.exit_code == 1


def test_what_is_still_broken_is_said_once_failing_checks_do_not_already_say_it() -> None:
    failures = [f"sig {i}" for i in range(12)]
    found, lines = run(failures=failures)
    assert (found.exit_code, found.green) == (1, False)
    assert "- still broken: " + ", ".join(failures[:10]) in lines
    _, lines = run(checks=[CheckResult(command="pytest -q", exit_code=1)], failures=failures)
    assert not any("still broken" in line for line in lines)
    found, _ = run(checks=[], failures=["conflict markers in a.py"])  # CHECK_COMMANDS=none does not hide markers
    assert found.exit_code == 1


def test_what_was_failing_before_the_run_is_said_but_does_not_fail_it() -> None:
    found, lines = run(preexisting=[f"old {i}" for i in range(11)])
    assert found.exit_code == 0
    assert lines[-1] == "- already failing when the run started: " + ", ".join(f"old {i}" for i in range(10))


def test_unlanded_work_of_a_task_the_list_does_not_know_still_counts() -> None:
    found, lines = run(tasks=[task("a", TaskStatus.LANDED)], unlanded={"zz": "its branch was set aside", "a": "late"})
    assert found.exit_code == 1 and found.unlanded == ["zz"]
    assert lines[0] == "1 landed, 1 unlanded; checks green" and "- not landed: zz (its branch was set aside)" in lines


def test_long_reasons_are_cut_and_at_most_thirty_tasks_are_listed() -> None:
    long = "word " * 100
    tasks = [task(f"t{i:02}", TaskStatus.FAILED, long) for i in range(35)]
    _, lines = run(tasks=tasks)
    listed = [line for line in lines if line.startswith("t") and " failed: " in line]
    assert len(listed) == 30 and listed[0].startswith("t00 failed: word") and listed[-1].startswith("t29 ")
    assert all(len(line) <= len("t00 failed: ") + 200 and line.endswith("…") for line in listed)


def test_the_feature_line_counts_each_status_and_unproven_asked_features_fail_the_run() -> None:
    features = [FeatureRecord(id="a", status="verified"), FeatureRecord(id="b", status="verified"),
                FeatureRecord(id="c", name="", status="failing", evidence="e " * 400),
                FeatureRecord(id="d", status="missing", asked=False)]
    found, lines = run(features=features)
    assert lines[3] == "features: 2 verified, 1 failing, 1 missing"
    [reason] = [line for line in lines if line.startswith("- feature")]
    assert reason.startswith("- feature c is failing: e e") and len(reason) <= len("- feature c is failing: ") + 300
    assert found.exit_code == 1
    _, lines = run(features=[])
    assert lines[3] == "features: none declared"
    _, lines = run()
    assert not any(line.startswith("features:") for line in lines)  # no FEATURES.json: no ledger line


def test_run_errors_are_listed_last_and_fail_the_run_even_when_green() -> None:
    found, lines = run(errors=["stopped early: RUN_MAX_COST spent", "interrupted"])
    assert (found.exit_code, found.green) == (1, True)
    assert lines[-2:] == ["- stopped early: RUN_MAX_COST spent", "- interrupted"]
