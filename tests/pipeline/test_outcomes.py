"""Per-test judgement of a candidate against its base (`pipeline/outcomes.py`)."""

from __future__ import annotations

from longshot.pipeline.outcomes import allowed, judge
from longshot.types import CheckResult

CMD = "python -m pytest"


def ran(tests: dict[str, str] | None, errors: list[str] | None = None, exit_code: int | None = None) -> CheckResult:
    failed = bool(errors) or (tests is not None and "failed" in tests.values())
    code = exit_code if exit_code is not None else (1 if failed else 0)
    return CheckResult(command=CMD, exit_code=code, tests=tests, collect_errors=errors or [])


BASE = ran({"t/test_a.py::test_a": "passed", "t/test_a.py::test_b": "passed", "t/test_c.py::test_c": "failed"})


def test_lost_regressed_and_new_failures_are_named_and_preexisting_failures_are_not() -> None:
    j = judge(BASE, ran({"t/test_a.py::test_a": "skipped", "t/test_c.py::test_c": "failed",
                         "t/test_n.py::test_n": "failed"}), [])
    assert j is not None and j.blocking
    assert (j.lost, j.regressed, j.new_failures) == (["t/test_a.py::test_b"], ["t/test_a.py::test_a"],
                                                      ["t/test_n.py::test_n"])
    assert "t/test_a.py::test_b" in j.reason() and "refused (rule: " in j.reason()
    assert j.preexisting == ["t/test_c.py::test_c"]
    assert not judge(BASE, ran({**(BASE.tests or {})}), []).blocking  # type: ignore[union-attr]


def test_a_runner_that_no_longer_reports_loses_every_passing_base_test() -> None:
    j = judge(BASE, ran(None), [])
    assert j is not None and sorted(j.lost) == ["t/test_a.py::test_a", "t/test_a.py::test_b"]
    assert judge(ran(None), ran(None), []) is None  # neither reported: judged by exit code


def test_allowances_cover_ids_files_folders_and_patterns() -> None:
    for allowance in ("t/test_a.py::test_b", "t/test_a.py", "t/", "t/*::test_b"):
        assert allowed("t/test_a.py::test_b", [allowance]), allowance
    assert not allowed("t/test_a.py::test_b", ["t/test_a.py::test_a", "u/"])
    j = judge(BASE, ran({"t/test_a.py::test_a": "passed"}), ["t/test_a.py::test_b"])
    assert j is not None and not j.blocking


def test_a_base_that_cannot_collect_excuses_what_the_candidate_reveals_but_not_losses() -> None:
    # The base could not start its runner (a conftest import error: exit 4, no report).
    j = judge(ran(None, exit_code=4), ran({"t/test_a.py::test_a": "passed", "t/test_b.py::test_b": "failed"}), [])
    assert j is not None and not j.blocking and j.revealed == ["t/test_b.py::test_b"] and j.tests_run == 2
    # One file failed to collect on the base: only its tests are excused, not others.
    base = ran({"t/test_a.py::test_a": "passed"}, errors=["t/test_b.py"])
    j = judge(base, ran({"t/test_a.py::test_a": "passed", "t/test_b.py::test_b": "failed",
                         "t/test_c.py::test_c": "failed"}), [])
    assert j is not None and j.revealed == ["t/test_b.py::test_b"] and j.new_failures == ["t/test_c.py::test_c"]
    # More collection errors than the base, and no more tests run: worse.
    j = judge(base, ran({"t/test_a.py::test_a": "passed"}, errors=["t/test_b.py", "t/test_d.py"]), [])
    assert j is not None and j.new_errors == ["t/test_d.py"]
    # A base-passing test that fails is blamed even when the base had collection errors.
    j = judge(base, ran({"t/test_a.py::test_a": "failed", "t/test_b.py::test_b": "passed"}), [])
    assert j is not None and j.regressed == ["t/test_a.py::test_a"]


def test_a_command_failing_anew_with_no_failing_test_is_blamed() -> None:
    j = judge(ran({"t/test_a.py::test_a": "passed"}), ran({"t/test_a.py::test_a": "passed"}, exit_code=3), [])
    assert j is not None and j.exit_only and j.blocking


def test_tests_a_fail_fast_command_never_reached_are_not_called_lost() -> None:
    """On more-itertools with ``pytest -q -x``, one broken test once listed 663 "no longer run"
    tests and a rule the planner could only answer by allowing their removal."""
    base = CheckResult(command="python -m pytest -q -x tests", exit_code=0,
                       tests={f"t/test_a.py::test_{i}": "passed" for i in range(20)})
    broken = CheckResult(command=base.command, exit_code=1, tests={"t/test_a.py::test_0": "passed",
                                                                  "t/test_a.py::test_1": "failed"})
    j = judge(base, broken, [])
    assert j is not None and j.blocking  # the failure still refuses the change
    assert j.regressed == ["t/test_a.py::test_1"] and j.lost == [] and j.unreached == 18
    assert "refused (rule: " not in j.reason() and "18 more tests were not reached" in j.reason()
    # Without a failure to explain them, tests that stopped running are lost, fail-fast or not.
    narrowed = CheckResult(command=base.command, exit_code=0, tests={"t/test_a.py::test_0": "passed"})
    j = judge(base, narrowed, [])
    assert j is not None and len(j.lost) == 19 and "refused (rule: " in j.reason()
    # The same failure under a command that runs everything: what did not run is lost.
    full = CheckResult(command="python -m pytest -q tests", exit_code=1, tests=broken.tests)
    j = judge(CheckResult(command=full.command, exit_code=0, tests=base.tests), full, [])
    assert j is not None and len(j.lost) == 18
