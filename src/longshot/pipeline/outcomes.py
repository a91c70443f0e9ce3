"""Judging a candidate by the tests it ran, against what the base ran (per test, not per exit code).

A check command whose test runner reported per-test outcomes (see `pin.py`) is judged by
comparing the candidate's report with the base's:

- **lost**: a test that passed on the base and is no longer run (deleted, deselected,
  filtered by configuration or a collection hook, or the command no longer runs the runner);
- **regressed**: a test that passed on the base and now fails or is skipped;
- **new failures**: a test the base did not fail that fails now, where the base could reach
  it; a test in a file (or under a folder) that the base could not collect was not reachable,
  so a change that makes it run is not blamed for what it reveals;
- **new collection errors**: what the candidate cannot collect and the base could; excused
  when the base itself could not collect its tests and the candidate is no worse (fewer
  collection errors, or more tests ran).

Tests the task is allowed to remove or skip (``allow_removed_tests``: test ids, files,
``fnmatch`` patterns) are not counted as lost or regressed. Tests failing on both trees are
pre-existing: they do not block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from longshot.types import CheckResult

SHOWN = 8
"""Test ids named in a refusal (the rest are counted)."""
REFUSAL = "refused (rule: "
"""How a refusal for weakening the checks starts: the planner may not re-plan the same task
unchanged (`parse.TaskValidator`) without the allowance the refusal names."""
RULE_LOST = "tests that passed on the base must still run"
ALLOW_TESTS = '"allow_removed_tests": [the test ids or files]'


@dataclass
class Judgement:
    """How one command's tests changed from the base to the candidate."""

    command: str
    lost: list[str] = field(default_factory=list)
    regressed: list[str] = field(default_factory=list)
    new_failures: list[str] = field(default_factory=list)
    new_errors: list[str] = field(default_factory=list)
    revealed: list[str] = field(default_factory=list)
    """Failures excused: the base could not collect them."""
    preexisting: list[str] = field(default_factory=list)
    """Tests failing on the base and the candidate alike: not blamed."""
    exit_only: str = ""
    """Set when the command newly fails although no test did (a crash after the tests, a threshold)."""
    tests_run: int = 0
    base_broken: bool = False
    unreached: int = 0
    """Base tests a fail-fast command (``-x``, ``--maxfail``, ``--failfast``) never reached after a
    failure: not counted as lost, since the failure already blocks and names the cause."""

    @property
    def blocking(self) -> bool:
        return bool(self.lost or self.regressed or self.new_failures or self.new_errors or self.exit_only)

    def reason(self) -> str:
        parts = [f"{what} {_named(ids)}" for what, ids in (
            (f"{REFUSAL}{RULE_LOST}): tests that passed on the base are no longer run (allow with {ALLOW_TESTS}):",
             self.lost),
            ("tests that passed on the base no longer pass:", self.regressed),
            ("new failing tests:", self.new_failures),
            ("new collection errors:", self.new_errors)) if ids]
        if self.exit_only:
            parts.append(self.exit_only)
        if self.unreached:
            parts.append(f"{self.unreached} more tests were not reached: the command stops at its first failure")
        return f"{self.command}: " + "; ".join(parts)

    def ids(self) -> set[str]:
        return {*self.lost, *self.regressed, *self.new_failures, *self.new_errors, *([self.exit_only] * bool(self.exit_only))}

    def keep_only(self, ids: set[str]) -> None:
        """Forget what did not block again on a re-run (flakes)."""
        self.lost = [t for t in self.lost if t in ids]
        self.regressed = [t for t in self.regressed if t in ids]
        self.new_failures = [t for t in self.new_failures if t in ids]
        self.new_errors = [t for t in self.new_errors if t in ids]
        self.exit_only = self.exit_only if self.exit_only in ids else ""


def _named(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN])
    return shown + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def allowed(test_id: str, allowances: list[str]) -> bool:
    """Whether ``test_id`` is covered by an allowance: its id, its file (or folder), or a pattern."""
    for entry in allowances:
        if test_id == entry or fnmatchcase(test_id, entry) or test_id.startswith((entry + "::", entry.rstrip("/") + "/")):
            return True
    return False


def _unreached(test_id: str, errors: list[str]) -> bool:
    """Whether the base could not reach ``test_id``: its file, a folder above it, or (unittest)
    its module failed to collect."""
    for error in errors:
        if error in (".", "") or test_id.split("::")[0] == error or test_id.startswith((error + "/", error + "::")):
            return True
        if "::" not in test_id and "/" not in error and test_id.startswith(error + "."):
            return True
    return False


FAIL_FAST = ("-x", "--exitfirst", "--maxfail", "-f", "--failfast", "--test-bail")
TAKES_VALUE = frozenset("kmprcoWn")
"""pytest's short options that take a value: in ``-rxXs`` the ``x`` is ``-r``'s, not ``-x``."""


def _fails_fast(command: str) -> bool:
    """Whether the command stops at its first failure (pytest ``-x``/``--maxfail``, unittest
    ``-f``/``--failfast``, node's ``--test-bail``): the tests after it never run."""
    return any(w in FAIL_FAST or w.startswith("--maxfail=") or _short_x(w) for w in command.split())


def _short_x(word: str) -> bool:
    """Whether a cluster of short flags (``-qx``) holds ``-x`` before any flag that takes a value."""
    if not word.startswith("-") or word.startswith("--") or not word[1:].isalpha():
        return False
    for letter in word[1:]:
        if letter == "x":
            return True
        if letter in TAKES_VALUE:
            return False
    return False


def judge(base: CheckResult | None, candidate: CheckResult, allowances: list[str]) -> Judgement | None:
    """The per-test judgement of one command; None when neither tree has a per-test report
    (the command is then judged by its exit code, as commands without a test runner are)."""
    b_tests = base.tests if base is not None else None
    c_tests = candidate.tests
    if c_tests is None and not (b_tests and "passed" in b_tests.values()):
        return None
    c_tests = c_tests or {}
    c_errors = candidate.collect_errors
    b_errors = base.collect_errors if base is not None else []
    base_failed = base is None or not base.ok
    # Without a report, a failing base could not even start its runner (a conftest import error).
    base_broken = b_tests is None and base_failed or bool(b_errors)
    b_tests = b_tests or {}
    j = Judgement(command=candidate.command, base_broken=base_broken,
                  tests_run=sum(1 for o in c_tests.values() if o != "skipped"))
    for test_id, outcome in b_tests.items():
        if outcome != "passed" or allowed(test_id, allowances):
            continue
        if test_id not in c_tests:
            j.lost.append(test_id)
        elif c_tests[test_id] != "passed":
            j.regressed.append(test_id)
    if (j.regressed or "failed" in c_tests.values()) and _fails_fast(candidate.command):
        j.unreached, j.lost = len(j.lost), []
    unreachable = b_errors + (["."] if base_broken and not b_errors else [])
    for test_id, outcome in c_tests.items():
        if outcome == "failed" and b_tests.get(test_id) == "failed":
            j.preexisting.append(test_id)
        elif outcome == "failed" and test_id not in b_tests:
            (j.revealed if _unreached(test_id, unreachable) else j.new_failures).append(test_id)
    new_errors = [e for e in c_errors if e not in b_errors]
    ran_before = sum(1 for o in b_tests.values() if o != "skipped")
    if new_errors and not (base_broken and (len(c_errors) < max(len(b_errors), 1) or j.tests_run > ran_before)):
        j.new_errors = new_errors
    if not j.blocking and not candidate.ok and base is not None and base.ok and "failed" not in c_tests.values() \
            and not c_errors:
        j.exit_only = f"exits {candidate.exit_code} although no test failed (it passes on the base)"
    return j
