"""Protected paths: what a task may not change without the planner's explicit allowance.

A change that deletes tests, adds skip markers, or edits CI configuration, the checks'
configuration or Longshot's own files could make the gate pass by weakening it. Such a
change is refused with the list of offending paths, unless its task says
``"allow_protected": true``.
"""

from __future__ import annotations

import re

from longshot.git import Git

TEST_FILE = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|\.(test|spec)\.[jt]sx?$")
CONFIG = re.compile(
    r"(^|/)(conftest\.py|pytest\.ini|tox\.ini|noxfile\.py|setup\.cfg|jest\.config\.[^/]+|vitest\.config\.[^/]+"
    r"|\.gitlab-ci\.yml|Jenkinsfile|\.travis\.yml|azure-pipelines\.yml)$"
    r"|^(\.github|\.ci|\.circleci|\.longshot)/"
)
SKIP = re.compile(r"^\+.*(@pytest\.mark\.(skip|xfail)|pytest\.skip\(|@unittest\.skip|\b(it|describe|test)\.skip\("
                  r"|\bxit\(|\bxdescribe\(|t\.Skip\(|#\[ignore\])")


async def protected_changes(git: Git, base: str, candidate: str) -> list[str]:
    """Paths of ``base..candidate`` that touch protected ground, each with the rule it breaks."""
    found: list[str] = []
    status = await git.run("diff", "--name-status", "--no-renames", base, candidate)
    for line in status.splitlines():
        kind, _, path = line.partition("\t")
        if kind == "D" and TEST_FILE.search(path):
            found.append(f"{path} (deletes a test file)")
        elif CONFIG.search(path):
            found.append(f"{path} (CI or check configuration)")
    patch = await git.run("diff", "--unified=0", "--no-color", base, candidate)
    current = ""
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            current = line[6:]
        elif SKIP.search(line) and f"{current} (adds a skip marker)" not in found:
            found.append(f"{current} (adds a skip marker)")
    return found


TEST_NAME = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)|^\s*(?:it|test)\(\s*['\"]([^'\"]+)", re.MULTILINE)


async def _tests_changed(git: Git, base: str, rev: str) -> set[tuple[str, str]]:
    """(file, test name) for the tests in files that ``base..rev`` added or changed."""
    found: set[tuple[str, str]] = set()
    status = await git.run("diff", "--name-status", "--no-renames", base, rev)
    for line in status.splitlines():
        kind, _, path = line.partition("\t")
        if kind in ("A", "M") and TEST_FILE.search(path):
            text = await git.run("show", f"{rev}:{path}")
            found |= {(path, a or b) for a, b in TEST_NAME.findall(text)}
    return found


async def lost_tests(git: Git, source: str, tip: str, candidate: str) -> list[str]:
    """Tests that either side of a conflict added or changed but ``candidate`` no longer has.

    ``source`` is the change that conflicted, ``tip`` the target branch it conflicted with,
    ``candidate`` the resolution about to land. A resolution must keep both sides' work.
    """
    base = await git.run("merge-base", source, tip)
    wanted = await _tests_changed(git, base, source) | await _tests_changed(git, base, tip)
    lost = []
    texts: dict[str, str | None] = {}
    for path, name in sorted(wanted):
        if path not in texts:
            code, out, _ = await git.run_full("show", f"{candidate}:{path}")
            texts[path] = out if code == 0 else None
        text = texts[path]
        if text is None or name not in {a or b for a, b in TEST_NAME.findall(text)}:
            lost.append(f"{path}::{name}")
    return lost
