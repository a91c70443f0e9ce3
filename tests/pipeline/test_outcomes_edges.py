"""The per-test judgement (`pipeline/outcomes.py`) at its edges: which commands stop at their
first failure, which collection errors excuse what, what a refusal names and how it is cut,
and what a re-run keeps."""

from __future__ import annotations

import pytest

from longshot.pipeline.outcomes import REFUSAL, SHOWN, Judgement, allowed, judge
from longshot.types import CheckResult

PASSING = {f"t/test_a.py::test_{i}": "passed" for i in range(20)}


def result(command: str, tests: dict[str, str] | None, exit_code: int | None = None,
           errors: list[str] | None = None) -> CheckResult:
    failed = bool(errors) or bool(tests and "failed" in tests.values())
    return CheckResult(command=command, exit_code=(1 if failed else 0) if exit_code is None else exit_code,
                       tests=tests, collect_errors=errors or [])


def broken(command: str) -> Judgement:
    """The base passes 20 tests; the candidate fails one and stops after it."""
    j = judge(result(command, PASSING), result(command, {"t/test_a.py::test_0": "passed",
                                                           "t/test_a.py::test_1": "failed"}), [])
    assert j is not None and j.blocking
    return j


@pytest.mark.parametrize("command", ["pytest -x", "pytest --exitfirst", "pytest --maxfail=2", "pytest --maxfail 2",
                                     "pytest -qx tests", "pytest -vsx", "python -m unittest -f",
                                     "python -m unittest --failfast discover", "node --test --test-bail"])
def test_commands_that_stop_at_the_first_failure_leave_the_rest_unreached(command: str) -> None:
    j = broken(command)
    assert (j.lost, j.unreached) == ([], 18)


@pytest.mark.parametrize("command", ["pytest", "pytest -q tests", "pytest -rxXs", "pytest -rfEx -q", "pytest -k x",
                                     "pytest -kxyz", "pytest -m 'not slow'", "pytest -p xdist", "python -m unittest",
                                     "make test-x"])
def test_other_commands_run_everything_so_what_did_not_run_is_lost(command: str) -> None:
    """``-rxXs`` asks pytest to report xfailed tests: the ``x`` is -r's argument, not -x."""
    j = broken(command)
    assert (len(j.lost), j.unreached) == (18, 0)
    assert j.reason().startswith(f"{command}: {REFUSAL}")


def test_a_refusal_names_eight_tests_of_each_kind_and_counts_the_rest() -> None:
    base = result("pytest", PASSING)
    j = judge(base, result("pytest", {"t/test_a.py::test_0": "passed"}), [])
    assert j is not None and len(j.lost) == 19
    shown = ", ".join(f"t/test_a.py::test_{i}" for i in range(1, SHOWN + 1))
    assert j.reason() == (f"pytest: {REFUSAL}tests that passed on the base must still run): tests that passed on the "
                          'base are no longer run (allow with "allow_removed_tests": [the test ids or files]): '
                          f"{shown} and 11 more")


def test_every_kind_of_finding_is_in_the_reason_and_in_the_ids() -> None:
    base = result("pytest", {"a::gone": "passed", "a::worse": "passed", "a::same": "failed"}, errors=[])
    cand = result("pytest", {"a::worse": "skipped", "a::same": "failed", "b::new": "failed"}, errors=["c.py"])
    j = judge(base, cand, [])
    assert j is not None
    assert (j.lost, j.regressed, j.new_failures, j.new_errors, j.preexisting) == (
        ["a::gone"], ["a::worse"], ["b::new"], ["c.py"], ["a::same"])
    reason = j.reason()
    for part in ("no longer run", "a::gone", "no longer pass: a::worse", "new failing tests: b::new",
                 "new collection errors: c.py"):
        assert part in reason
    assert "a::same" not in reason
    assert j.ids() == {"a::gone", "a::worse", "b::new", "c.py"}


def test_a_rerun_keeps_only_what_failed_again() -> None:
    j = Judgement(command="pytest", lost=["l1", "l2"], regressed=["r1"], new_failures=["n1", "n2"], new_errors=["e1"],
                  exit_only="exits 3 although no test failed (it passes on the base)")
    j.keep_only({"l2", "n1"})
    assert (j.lost, j.regressed, j.new_failures, j.new_errors, j.exit_only) == (["l2"], [], ["n1"], [], "")
    assert j.blocking
    j.keep_only(set())
    assert not j.blocking and j.reason() == "pytest: "


def test_exit_only_blames_a_command_only_when_nothing_else_explains_its_exit() -> None:
    ok = result("pytest", {"a::t": "passed"})
    crashed = result("pytest", {"a::t": "passed"}, exit_code=3)
    j = judge(ok, crashed, [])
    assert j is not None and j.exit_only == "exits 3 although no test failed (it passes on the base)"
    assert "a::t" not in j.ids() and j.exit_only in j.ids()
    # The base failed the same way, or the candidate says why: no exit-only blame.
    assert judge(result("pytest", {"a::t": "passed"}, exit_code=3), crashed, []).exit_only == ""  # type: ignore[union-attr]
    j = judge(ok, result("pytest", {"a::t": "passed"}, exit_code=2, errors=["b.py"]), [])
    assert j is not None and j.exit_only == "" and j.new_errors == ["b.py"]
    # A collection error the base had too (its exit passed anyway) explains the exit: not blamed twice.
    shared = judge(result("pytest", {"a::t": "passed"}, exit_code=0, errors=["b.py"]),
                   result("pytest", {"a::t": "passed"}, exit_code=2, errors=["b.py"]), [])
    assert shared is not None and shared.exit_only == "" and not shared.blocking


@pytest.mark.parametrize("error, test_id, excused", [
    ("t/test_b.py", "t/test_b.py::test_x", True),
    ("t/test_b.py", "t/test_b.py::TestK::test_x", True),
    ("t", "t/test_b.py::test_x", True),  # a folder's conftest
    (".", "anything::at_all", True),
    ("", "anything::at_all", True),
    ("test_b", "test_b.T.test_x", True),  # unittest: the module that failed to import
    ("tests.test_b", "tests.test_b.T.test_x", True),
    ("t/test_b.py", "t/test_bb.py::test_x", False),
    ("t/test_b", "t/test_b.py::test_x", False),
    ("test_b", "test_bb.T.test_x", False),
    ("test_b", "t/test_b.py::test_x", False),
])
def test_a_failure_is_excused_only_where_the_base_could_not_collect(error: str, test_id: str, excused: bool) -> None:
    base = result("pytest", {"z::ok": "passed"}, errors=[error])
    j = judge(base, result("pytest", {"z::ok": "passed", test_id: "failed"}, errors=[error]), [])
    assert j is not None
    assert (j.revealed, j.new_failures) == (([test_id], []) if excused else ([], [test_id]))


def test_a_base_that_could_not_collect_excuses_errors_only_when_the_candidate_is_no_worse() -> None:
    base = result("pytest", {"z::ok": "passed"}, errors=["a.py", "b.py"])
    fewer = judge(base, result("pytest", {"z::ok": "passed"}, errors=["c.py"]), [])
    assert fewer is not None and fewer.new_errors == [] and fewer.base_broken
    more_ran = judge(base, result("pytest", {"z::ok": "passed", "x::new": "passed"}, errors=["a.py", "b.py", "c.py"]), [])
    assert more_ran is not None and more_ran.new_errors == []
    worse = judge(base, result("pytest", {"z::ok": "passed"}, errors=["a.py", "b.py", "c.py"]), [])
    assert worse is not None and worse.new_errors == ["c.py"]
    clean = judge(result("pytest", {"z::ok": "passed"}), result("pytest", {"z::ok": "passed"}, errors=["c.py"]), [])
    assert clean is not None and clean.new_errors == ["c.py"] and not clean.base_broken


def test_without_a_base_report_or_a_passing_base_test_the_exit_code_judges() -> None:
    assert judge(None, result("pytest", None), []) is None
    assert judge(result("pytest", {"a::t": "failed", "a::s": "skipped"}), result("pytest", None), []) is None
    j = judge(None, result("pytest", {"a::t": "failed", "a::u": "passed"}), [])
    assert j is not None and j.base_broken and j.revealed == ["a::t"] and not j.blocking  # no base: nothing to lose
    assert j.tests_run == 2


def test_allowances_cover_lost_and_regressed_but_never_new_failures() -> None:
    base = result("pytest", {"t/a.py::x": "passed", "t/a.py::y": "passed", "u/b.py::z": "passed"})
    cand = result("pytest", {"t/a.py::y": "skipped", "u/b.py::z": "passed", "t/c.py::new": "failed"})
    j = judge(base, cand, ["t/"])
    assert j is not None and (j.lost, j.regressed, j.new_failures) == ([], [], ["t/c.py::new"])
    assert allowed("t/a.py::x", ["t"]) and allowed("t/a.py::x", ["t/a.py::*"]) and not allowed("t/a.py::x", ["t/a"])
    assert not allowed("t/a.py::x", []) and allowed("t/a.py::x", ["*::x"])
