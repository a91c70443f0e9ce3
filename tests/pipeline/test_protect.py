"""Protected paths judge weakening, not presence: read from the diff of the candidate against its base."""

from __future__ import annotations

from pathlib import Path

from longshot.git import Git
from longshot.pipeline.protect import compare_tests, protected_changes, protected_many
from longshot.testing.repos import git, make_remote

BASE_TESTS = "import unittest\n\ndef test_b():\n    pass\n\nclass TestK(unittest.TestCase):\n    def test_k(self):\n        pass\n"


def commit_all(work: Path, files: dict[str, str | None]) -> str:
    for path, text in files.items():
        if text is None:
            (work / path).unlink()
            continue
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "change", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def clone(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    remote = make_remote(tmp_path, files)
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    return work, git("rev-parse", "HEAD", cwd=work)


async def test_weakening_existing_tests_is_refused_and_new_skipped_tests_are_only_reported(tmp_path: Path) -> None:
    work, base = clone(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n", "tests/test_b.py": BASE_TESTS,
                                  "tests/helpers.py": "X = 1\n", "conftest.py": "", "src/app.py": "A = 1\n"})
    skipped = BASE_TESTS.replace("def test_b", "@unittest.skip('later')\ndef test_b").replace(
        "        pass", "        self.skipTest('no')")
    head = commit_all(work, {
        "tests/test_a.py": None, "tests/helpers.py": None, "tests/test_b.py": skipped, "conftest.py": "x = 1\n",
        "src/app.py": "A = 2\n:not a raw line\n",
        "tests/test_new.py": "import sys, pytest\n\n@pytest.mark.skipif(sys.platform == 'win32', reason='posix')\n"
                             "def test_posix():\n    pass\n"})

    found = await protected_changes(Git(work), base, head)

    assert sorted(found.refused) == ["conftest.py (CI or check configuration)", "tests/test_a.py (deletes a test file)",
                                     "tests/test_b.py (skips tests that exist on the base: test_b, TestK::test_k)"]
    assert found.new_skips == ["tests/test_new.py::test_posix"]
    assert "allow_removed_tests" in found.reason() and "allow_protected" in found.reason()
    # The planner's allowances: by test id, by file, or configuration.
    allowed = await protected_changes(Git(work), base, head, ["tests/test_a.py", "tests/test_b.py::*"],
                                      allow_config=True)
    assert not allowed and allowed.new_skips == ["tests/test_new.py::test_posix"]
    assert not await protected_changes(Git(work), base, base)


def test_each_kind_of_skip_and_removal_is_told_apart_from_new_tests() -> None:
    py = "def test_a():\n    pass\n\ndef test_b():\n    pass\n"
    cases = {
        "module-wide pytestmark": ("t/test_x.py", py, "import pytest\npytestmark = pytest.mark.skip\n" + py),
        "importorskip": ("t/test_x.py", py, "import pytest\npytest.importorskip('numpy')\n" + py),
        "xfail": ("t/test_x.py", py, py.replace("def test_a", "@pytest.mark.xfail\ndef test_a")),
        "js it.skip": ("t/a.test.js", "it('a', f)\ntest('b', g)\n", "it.skip('a', f)\ntest('b', g)\n"),
        "js .only narrows": ("t/a.test.js", "it('a', f)\ntest('b', g)\n", "it.only('a', f)\ntest('b', g)\n"),
        "go t.Skip": ("x_test.go", "func TestA(t *testing.T) {}\n", "func TestA(t *testing.T) { t.Skip() }\n"),
    }
    for name, (path, before, after) in cases.items():
        removed, skipped, fresh = compare_tests(path, before, after)
        assert skipped and not removed and not fresh, name
    assert compare_tests("t/test_x.py", py, "def test_a():\n    pass\n") == (["t/test_x.py::test_b"], [], [])
    added = py + "\n@pytest.mark.skipif(sys.version_info < (3, 12), reason='new')\ndef test_c():\n    pass\n"
    assert compare_tests("t/test_x.py", py, added) == ([], [], ["t/test_x.py::test_c"])
    assert compare_tests("t/a.test.js", "it('a', f)\n", "it('a', f)\nit.skip('b', g)\n") == ([], [], ["t/a.test.js::b"])


async def test_many_pairs_in_one_process_give_what_each_pair_gives_alone(tmp_path: Path) -> None:
    work, first = clone(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n", "src/app.py": "A = 1\n"})
    commits = [first]
    for change in ({"src/app.py": "A = 2\n"}, {"tests/test_b.py": "import unittest\n\n@unittest.skip('later')\n"
                                                                  "def test_b():\n    pass\n"},
                   {"src/app.py": "A = 3\n"}, {"tox.ini": "[tox]\n"}, {"tests/test_a.py": None}):
        commits.append(commit_all(work, change))
    pairs = [(b, c, [], False) for b, c in zip(commits, commits[1:])]

    many = await protected_many(Git(work), pairs)

    alone = {c: found for b, c, _, _ in pairs
             if (found := await protected_changes(Git(work), b, c)) or found.new_skips}
    assert many == alone
    assert {c: p.refused for c, p in many.items()} == {commits[2]: [], commits[4]: ["tox.ini (CI or check configuration)"],
                                                       commits[5]: ["tests/test_a.py (deletes a test file)"]}
    assert many[commits[2]].new_skips == ["tests/test_b.py::test_b"]
    assert await protected_many(Git(work), []) == {}
