"""Which tests prove a feature, and how the final checks' results are read for them (no second run)."""

from __future__ import annotations

import pytest

from longshot.events import MemorySink
from longshot.pipeline.features import FeatureLedger, parse_features
from longshot.pipeline.proof import covers, file_verdict, mentions, named_in
from longshot.types import CheckResult, Task

TREE = {"tests/test_slug.py", "tests/test_case.py", "tests/unit/test_deep.py", "wordkit/slug.py", "spec/a.test.ts"}

UNITTEST_RED = """F.
======================================================================
FAIL: test_sentences (tests.test_case.CaseTest.test_sentences)
----------------------------------------------------------------------
AssertionError: 1 != 2

Ran 2 tests in 0.001s

FAILED (failures=1)"""
PYTEST_RED = "FAILED tests/test_case.py::test_snake - assert 'a_b' == 'a-b'\n1 failed, 3 passed in 0.05s"


@pytest.mark.parametrize(("command", "path", "covered"), [
    ("python -m pytest -q -p no:cacheprovider", "tests/test_slug.py", True),  # a whole-suite command
    ("python -m unittest discover -s tests -t .", "tests/unit/test_deep.py", True),  # names a directory above it
    ("pytest tests/test_slug.py", "tests/test_slug.py", True),
    ("pytest tests/test_slug.py", "tests/test_case.py", False),  # names another file
    ("pytest tests/test_slug.py::test_one -x", "tests/test_slug.py", True),
    ("python -m unittest tests.test_case", "tests/test_case.py", True),  # names its module
    ("python -m unittest tests.test_case", "tests/test_slug.py", False),
    ("npm test", "spec/a.test.ts", True),
    ("go test ./...", "tests/test_slug.py", True),
])
def test_a_check_covers_the_test_files_it_names_or_every_file_when_it_names_none(command: str, path: str,
                                                                                  covered: bool) -> None:
    assert covers(command, path, TREE) is covered


def test_failure_signatures_are_mapped_to_test_files_by_path_or_module() -> None:
    assert mentions("test tests/test_case.py::test_snake", "tests/test_case.py")
    assert mentions("test tests.test_case.CaseTest.test_sentences", "tests/test_case.py")
    assert mentions("error import tests.test_case", "tests/test_case.py")
    assert not mentions("test tests.test_case_extra.T.test_x", "tests/test_case.py")
    assert not mentions("test tests/test_slug.py::test_one", "tests/test_case.py")


@pytest.mark.parametrize("output", [UNITTEST_RED, PYTEST_RED])
def test_a_red_check_fails_only_the_files_its_failures_name(output: str) -> None:
    red = CheckResult(command="python -m pytest -q", exit_code=1, output_tail=output)
    failed = file_verdict("tests/test_case.py", [red], TREE)
    passed = file_verdict("tests/test_slug.py", [red], TREE)
    assert failed is not None and failed.passed is False and "tests/test_case.py failed" in failed.evidence
    assert passed is not None and passed.passed is True


def test_a_failure_that_cannot_be_told_apart_counts_against_every_covered_file_and_uncovered_files_prove_nothing() -> None:
    crashed = CheckResult(command="python -m pytest -q", exit_code=2, output_tail="Segmentation fault")
    verdict = file_verdict("tests/test_slug.py", [crashed], TREE)
    assert verdict is not None and verdict.passed is False
    narrow = CheckResult(command="pytest tests/test_case.py", exit_code=0)
    build = CheckResult(command="npm run build", kind="build", exit_code=0)
    assert file_verdict("tests/test_slug.py", [narrow, build], TREE) is None


@pytest.mark.parametrize(("acceptance", "files", "commands"), [
    ("`pytest tests/test_a.py` passes", [], ["pytest tests/test_a.py"]),
    ("python -m unittest tests.test_words passes.", [], ["python -m unittest tests.test_words"]),
    ("tests/test_a.py and tests/test_b.py pass", ["tests/test_a.py", "tests/test_b.py"], []),
    ("slugify('A B') returns 'a-b'", [], []),
    ("go to the docs page and make sure it renders. python is not needed.", [], []),  # prose, not commands
    ("make check passes; go test ./... is green", [], ["make check", "go test ./..."]),
    ("`tests/test_a.py` exists; `npm test` is green", ["tests/test_a.py"], ["npm test"]),
])
def test_an_acceptance_names_test_files_and_commands(acceptance: str, files: list[str], commands: list[str]) -> None:
    assert named_in(acceptance) == (files, commands)


def test_features_json_shapes_are_read_and_deferred_features_are_not_asked_for() -> None:
    specs = parse_features("""{"features": [
        {"id": "F1", "name": "slug", "module": "w/slug.py", "tests": "tests/test_slug.py"},
        {"name": "Word Wrap", "tests": ["tests/test_wrap.py", "pytest -k wrap"]},
        {"id": "F3", "acceptance": "`make check` passes", "status": "deferred"},
        "plain feature"]}""")
    assert [(s.id, s.tests, s.commands, s.asked) for s in specs] == [
        ("F1", ["tests/test_slug.py"], [], True), ("word-wrap", ["tests/test_wrap.py"], ["pytest -k wrap"], True),
        ("F3", [], ["make check"], False), ("plain-feature", [], [], True)]
    assert specs[0].files == ["w/slug.py"]
    with pytest.raises(ValueError):
        parse_features('{"feature": []}')


def test_tasks_serve_the_feature_they_name_inherit_or_fix_the_tests_of() -> None:
    ledger = FeatureLedger(MemorySink())
    ledger.declare(parse_features('{"features": [{"id": "F1", "tests": "tests/test_slug.py"}, {"id": "F2"}]}'))
    tasks = [Task(id="a", branch="w/a", description="x", feature="F1"),
             Task(id="a-sub-1", branch="w/b", description="x", parent="a"),
             Task(id="b", branch="w/c", description="x", feature="F2"),
             Task(id="b-conflict-fix", branch="w/d", description="x", kind="conflict-fix", continue_from="b"),
             Task(id="fix-001", branch="w/e", description="x", kind="fix",
                  fixes=["test tests.test_slug.SlugTest.test_unicode"]),
             Task(id="fix-002", branch="w/f", description="x", kind="fix", fixes=["types src/a.ts TS2322"]),
             Task(id="loose", branch="w/g", description="x")]
    assert ledger.members(tasks) == {"F1": ["a", "a-sub-1", "fix-001"], "F2": ["b", "b-conflict-fix"]}
