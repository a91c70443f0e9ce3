"""Protected paths, read from one diff of the candidate against its base."""

from __future__ import annotations

from pathlib import Path

from longshot.git import Git
from longshot.pipeline.protect import protected_changes, protected_many
from longshot.testing.repos import git, make_remote


async def test_deleted_tests_configuration_and_skip_markers_are_named_and_nothing_else(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n", "tests/test_b.py": "x = 1\n",
                                    "conftest.py": "", "src/app.py": "A = 1\n", ".github/workflows/ci.yml": "on: push\n"})
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    base = git("rev-parse", "HEAD", cwd=work)
    (work / "tests" / "test_a.py").unlink()
    (work / "tests" / "test_b.py").write_text("import pytest\n\n@pytest.mark.skip\ndef test_b():\n    pass\n")
    (work / "conftest.py").write_text("collect_ignore = ['tests']\n")
    (work / "src" / "app.py").write_text("A = 2\n:not a raw line\n")
    (work / "src" / "new.py").write_text("B = 1\n")
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "change", cwd=work)

    found = await protected_changes(Git(work), base, git("rev-parse", "HEAD", cwd=work))

    assert sorted(found) == ["conftest.py (CI or check configuration)", "tests/test_a.py (deletes a test file)",
                             "tests/test_b.py (adds a skip marker)"]
    assert await protected_changes(Git(work), base, base) == []


async def test_many_pairs_in_one_process_give_what_each_pair_gives_alone(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n", "src/app.py": "A = 1\n"})
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    commits = [git("rev-parse", "HEAD", cwd=work)]
    for change in ({"src/app.py": "A = 2\n"}, {"tests/test_b.py": "import unittest\n\n@unittest.skip('later')\n"},
                   {"src/app.py": "A = 3\n"}, {"tox.ini": "[tox]\n"}):
        for path, text in change.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", "step", cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
    (work / "tests" / "test_a.py").unlink()
    git("commit", "--quiet", "-am", "drop a test", cwd=work)
    commits.append(git("rev-parse", "HEAD", cwd=work))
    pairs = list(zip(commits, commits[1:]))

    many = await protected_many(Git(work), pairs)

    alone = {c: found for b, c in pairs if (found := await protected_changes(Git(work), b, c))}
    assert many == alone
    assert many == {commits[2]: ["tests/test_b.py (adds a skip marker)"],
                    commits[4]: ["tox.ini (CI or check configuration)"],
                    commits[5]: ["tests/test_a.py (deletes a test file)"]}
    assert await protected_many(Git(work), []) == {}
