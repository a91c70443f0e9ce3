"""Protected ground (`pipeline/protect.py`) at its edges, on real commits: every kind of CI and
check configuration, what counts as a test file, how each language's tests and skips are read,
what the refusal says, and which tests a conflict resolution lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.git import Git
from longshot.pipeline.protect import compare_tests, lost_tests, protected_changes, protected_many
from longshot.testing.repos import make_remote

from hubkit import commit

PY_TESTS = "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n"


async def repo(tmp_path: Path, files: dict[str, str]) -> tuple[Git, str]:
    """A repository holding ``files`` in one commit (the base)."""
    git = Git(make_remote(tmp_path, {}))
    return git, await commit(git, await git.rev_parse("main"), "base", files)  # type: ignore[arg-type]


CONFIGS = [".github/workflows/ci.yml", ".ci/run", ".circleci/config.yml", ".longshot/config", "Jenkinsfile",
           ".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "noxfile.py", "tox.ini", "setup.cfg", "pytest.ini",
           "conftest.py", "tests/conftest.py", "web/jest.config.js", "web/vitest.config.ts", "sub/tox.ini"]
NOT_CONFIGS = ["src/github.py", "docs/ci.md", "src/conftest_helpers.py", "my.github/x", "tox.ini.bak", "app/.ci"]


async def test_every_kind_of_ci_and_check_configuration_is_protected_and_nothing_else(tmp_path: Path) -> None:
    git, base = await repo(tmp_path, {"README.md": "x\n"})
    head = await commit(git, base, "touch", {p: "x\n" for p in CONFIGS + NOT_CONFIGS})

    found = await protected_changes(git, base, head)

    assert sorted(found.refused) == sorted(f"{p} (CI or check configuration)" for p in CONFIGS)
    assert found.rules == ["changes CI or check configuration"] and found.tests == []
    reason = found.reason()
    assert reason.startswith("refused (rule: changes CI or check configuration): ")
    assert reason.endswith('plan the task again with "allow_protected": true; otherwise change the task so that it '
                           "keeps them")
    assert "allow_removed_tests" not in reason
    assert not await protected_changes(git, base, head, allow_config=True)
    deleted = await commit(git, head, "remove", {".github/workflows/ci.yml": None})
    assert (await protected_changes(git, head, deleted)).refused == [
        ".github/workflows/ci.yml (CI or check configuration)"]  # deleting it is changing it


async def test_test_files_of_every_language_are_recognised_when_deleted(tmp_path: Path) -> None:
    tests = {"tests/test_a.py": PY_TESTS, "test/b.py": PY_TESTS, "pkg/test_c.py": PY_TESTS, "pkg/d_test.py": PY_TESTS,
             "web/__tests__/e.js": "it('e', f)\n", "spec/f.rb": "it 'f'\n", "web/g.test.tsx": "test('g', f)\n",
             "web/h.spec.mjs": "it('h', f)\n", "web/i.test.cts": "it('i', f)\n",
             "go/j_test.go": "func TestJ(t *testing.T) {}\n"}
    others = {"testing/x.py": PY_TESTS, "src/contest.py": PY_TESTS, "tests/helpers.py": "X = 1\n",
              "tests/data.json": "", "web/h.spec.md": "it('h', f)\n"}
    git, base = await repo(tmp_path, {**tests, **others})
    head = await commit(git, base, "drop them all", dict.fromkeys([*tests, *others]))

    found = await protected_changes(git, base, head)

    assert sorted(found.refused) == sorted(f"{p} (deletes a test file)" for p in tests)
    assert "tests/test_a.py::test_a" in found.tests and "go/j_test.go::(tests of this file)" in found.tests
    assert "web/h.spec.mjs::h" in found.tests
    assert found.reason().startswith("refused (rule: weakens tests that exist on the base): ")
    assert '"allow_removed_tests": [the test ids or files]' in found.reason()


async def test_a_refusal_names_at_most_eight_tests_per_file_and_allowances_by_pattern_cover_the_rest(
        tmp_path: Path) -> None:
    many = "".join(f"def test_{i:02}():\n    pass\n\n" for i in range(12))
    git, base = await repo(tmp_path, {"tests/test_many.py": many})
    head = await commit(git, base, "keep one", {"tests/test_many.py": "def test_00():\n    pass\n"})

    found = await protected_changes(git, base, head)

    [refused] = found.refused
    assert refused.endswith("removes tests that exist on the base: " + ", ".join(f"test_{i:02}" for i in range(1, 9))
                            + ")")
    assert len(found.tests) == 11
    assert not await protected_changes(git, base, head, ["tests/test_many.py::test_*"])
    partly = await protected_changes(git, base, head, ["tests/test_many.py::test_0*"])
    assert partly.tests == ["tests/test_many.py::test_10", "tests/test_many.py::test_11"]


async def test_many_candidates_are_judged_each_with_its_own_allowances(tmp_path: Path) -> None:
    git, base = await repo(tmp_path, {"tests/test_a.py": PY_TESTS, "tox.ini": "[tox]\n"})
    dropped = await commit(git, base, "drop", {"tests/test_a.py": None})
    configured = await commit(git, base, "configure", {"tox.ini": "[tox]\nenvlist = py\n"})
    both = await commit(git, base, "both", {"tests/test_a.py": "def test_a():\n    pass\n", "tox.ini": "[tox]\nx\n"})
    new_skip = await commit(git, base, "new", {"tests/test_n.py": "import pytest\n\n\n@pytest.mark.skip\n"
                                                                  "def test_n():\n    pass\n"})

    found = await protected_many(git, [(base, dropped, ["tests/test_a.py"], False), (base, configured, [], True),
                                       (base, both, [], False), (base, new_skip, [], False)])

    assert set(found) == {both, new_skip}
    assert not found[new_skip] and found[new_skip].new_skips == ["tests/test_n.py::test_n"]  # reported, not refused
    assert found[both].rules == ["changes CI or check configuration", "weakens tests that exist on the base"]
    assert found[both].tests == ["tests/test_a.py::test_b"]
    assert ('plan the task again with "allow_removed_tests": [the test ids or files] and "allow_protected": true'
            in found[both].reason())


async def test_changes_that_keep_every_base_test_running_are_never_refused(tmp_path: Path) -> None:
    skipped = "import pytest\n\n\n@pytest.mark.skip\ndef test_a():\n    pass\n"
    git, base = await repo(tmp_path, {"tests/test_a.py": PY_TESTS, "tests/test_s.py": skipped,
                                      "web/a.test.js": "it('one', f)\n", "tests/helpers.py": "def make():\n    pass\n"})
    changes: dict[str, dict[str, str | None]] = {
        "a test added to a file": {"tests/test_a.py": PY_TESTS + "\n\ndef test_c():\n    pass\n"},
        "a test body changed": {"tests/test_a.py": PY_TESTS.replace("pass", "assert 1 + 1 == 2", 1)},
        "tests reordered": {"tests/test_a.py": "def test_b():\n    pass\n\n\ndef test_a():\n    pass\n"},
        "a skip removed": {"tests/test_s.py": skipped.replace("@pytest.mark.skip\n", "")},
        "a test file added": {"tests/test_new.py": "def test_new():\n    assert True\n"},
        "a helper rewritten": {"tests/helpers.py": "def build():\n    return 1\n"},
        "a JS test added": {"web/a.test.js": "it('one', f)\nit('two', g)\n"},
    }
    for name, files in changes.items():
        head = await commit(git, base, name, files)
        found = await protected_changes(git, base, head)
        assert not found and found.tests == [] and found.new_skips == [], name


async def test_moving_a_test_file_is_deleting_its_tests_where_they_were(tmp_path: Path) -> None:
    """Renames are not followed: the tests under their old ids are gone (allow them, or keep them)."""
    git, base = await repo(tmp_path, {"tests/test_a.py": PY_TESTS})
    head = await commit(git, base, "move", {"tests/test_a.py": None, "tests/unit/test_a.py": PY_TESTS})
    assert (await protected_changes(git, base, head)).refused == ["tests/test_a.py (deletes a test file)"]


CLASS = ("import unittest\n\n\nclass TestK(unittest.TestCase):\n    def test_x(self):\n        pass\n\n"
         "    def test_y(self):\n        pass\n\n\ndef test_top():\n    pass\n")


@pytest.mark.parametrize("name, after, skipped", [
    ("class decorator skips every method", CLASS.replace("class TestK", "@unittest.skip('later')\nclass TestK"),
     ["TestK::test_x", "TestK::test_y"]),
    ("a skip in one test's body is that test's", CLASS.replace("def test_x(self):\n        pass",
                                                                "def test_x(self):\n        self.skipTest('no')"),
     ["TestK::test_x"]),
    ("a skip at class level after the tests", CLASS.replace("\n\ndef test_top", "\n    pytestmark = pytest.mark.skip\n"
                                                                              "\n\ndef test_top"),
     ["TestK::test_x", "TestK::test_y"]),
    ("a decorator spread over lines", CLASS.replace(
        "    def test_y", "    @pytest.mark.skipif(\n        sys.platform == 'linux',\n        reason='x',\n    )\n"
                          "    def test_y"), ["TestK::test_y"]),
    ("raise SkipTest", CLASS.replace("def test_y(self):\n        pass",
                                      "def test_y(self):\n        raise unittest.SkipTest('x')"), ["TestK::test_y"]),
    ("removing a skip is not skipping", CLASS, []),
])
def test_python_skips_apply_to_what_they_are_written_on(name: str, after: str, skipped: list[str]) -> None:
    before = CLASS if skipped else CLASS.replace("def test_x(self):\n        pass",
                                                  "def test_x(self):\n        self.skipTest('flaky')")
    removed, found, fresh = compare_tests("tests/test_k.py", before, after)
    assert (removed, fresh) == ([], []), name
    assert found == [f"tests/test_k.py::{t}" for t in skipped], name


def test_nested_classes_and_async_tests_have_their_own_ids() -> None:
    text = ("class TestOuter(\n    Base,\n):\n    class TestInner:\n        async def test_deep(self):\n            pass\n\n"
            "    def test_mid(self):\n        pass\n\n\nasync def test_top():\n    pass\n\n\ndef helper():\n    pass\n")
    removed, _, _ = compare_tests("t/test_n.py", text, "")
    assert removed == ["t/test_n.py::TestOuter::TestInner::test_deep", "t/test_n.py::TestOuter::test_mid",
                       "t/test_n.py::test_top"]


def test_javascript_tests_and_skips_are_read_by_name() -> None:
    before = "describe('calc', () => {\n  it('adds', f)\n  test(\"subtracts\", g)\n  it(`multiplies`, h)\n})\n"
    cases = {
        "xit": before.replace("it('adds'", "xit('adds'"),
        "xdescribe": before.replace("describe(", "xdescribe("),
        "it.todo": before.replace("test(\"subtracts\"", "test.todo(\"subtracts\""),
    }
    expected = {"xit": ["adds"], "xdescribe": ["calc"], "it.todo": ["subtracts"]}
    for name, after in cases.items():
        removed, skipped, fresh = compare_tests("web/calc.test.js", before, after)
        assert (removed, fresh) == ([], []), name
        assert skipped == [f"web/calc.test.js::{t}" for t in expected[name]], name
    removed, _, _ = compare_tests("web/calc.test.js", before, before.replace("  it(`multiplies`, h)\n", ""))
    assert removed == ["web/calc.test.js::multiplies"]


def test_other_languages_are_judged_per_file() -> None:
    rust = "#[test]\nfn adds() {}\n"
    assert compare_tests("src/lib_test.go", "func TestA(t *testing.T) {}\n", "") == (
        ["src/lib_test.go::(tests of this file)"], [], [])
    assert compare_tests("tests/calc.rs", rust, rust.replace("#[test]", "#[test]\n#[ignore]"))[1] == [
        "tests/calc.rs::(tests of this file)"]
    assert compare_tests("tests/calc.rs", "", rust) == ([], [], [])  # a new file without skips: nothing to say
    assert compare_tests("tests/new.rs", "", "#[ignore]\n" + rust)[2] == ["tests/new.rs::(tests of this file)"]


async def test_a_resolution_that_drops_either_sides_new_or_changed_tests_lost_them(tmp_path: Path) -> None:
    base_files = {"tests/test_a.py": PY_TESTS, "web/a.test.js": "it('one', f)\n", "src/a.py": "A = 1\n"}
    git, base = await repo(tmp_path, base_files)
    ours = await commit(git, base, "ours", {"tests/test_a.py": PY_TESTS + "\n\ndef test_ours():\n    pass\n",
                                            "web/a.test.js": "it('one', f)\nit('two', g)\n"})
    theirs = await commit(git, base, "theirs", {"tests/test_b.py": "def test_theirs():\n    pass\n",
                                                "src/a.py": "A = 2\n"})
    both = await commit(git, theirs, "both", {"tests/test_a.py": PY_TESTS + "\n\ndef test_ours():\n    pass\n",
                                              "web/a.test.js": "it('one', f)\nit('two', g)\n"})
    dropped = await commit(git, theirs, "only theirs", {"tests/test_b.py": None})

    assert await lost_tests(git, ours, theirs, both) == []
    assert await lost_tests(git, ours, theirs, dropped) == [
        "tests/test_a.py::test_ours", "tests/test_b.py::test_theirs", "web/a.test.js::two"]


UNUSUAL = ['tests/test_café.py', 'tests/test "quoted".py', "tests/test_tab\there.py", "tests/test_back\\slash.py"]


@pytest.mark.parametrize("many", [False, True], ids=["one change", "a stack"])
async def test_protected_paths_with_unusual_names_are_judged_by_their_real_names(tmp_path: Path, many: bool) -> None:
    """git quotes a path with a non-ASCII byte, a quote, a tab or a backslash in a plain diff
    ("tests/test_caf\\303\\251.py" in quotes), which no rule recognises: every path is read
    from a ``-z`` diff, as named."""
    files = {p: PY_TESTS for p in UNUSUAL if p.startswith("tests/")}
    git, base = await repo(tmp_path, {"README.md": "x\n", **files})
    head = await commit(git, base, "weaken", {**{p: None for p in files}, ".github/workflows/ci ☂.yml": "x\n"})

    found = (await protected_many(git, [(base, head, [], False)]))[head] if many else \
        await protected_changes(git, base, head)

    assert sorted(found.refused) == sorted([".github/workflows/ci ☂.yml (CI or check configuration)",
                                            *(f"{p} (deletes a test file)" for p in files)])
    assert sorted(found.tests) == sorted(f"{p}::{t}" for p in files for t in ("test_a", "test_b"))
