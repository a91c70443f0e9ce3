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
    # One process: the raw lines (":<modes> <blobs> <status>\t<path>") come before the patch.
    out = await git.run("diff", "--raw", "--patch", "--unified=0", "--no-color", "--no-renames", base, candidate)
    return _scan(out.splitlines())


async def protected_many(git: Git, pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """`protected_changes` of many ``(base, candidate)`` pairs in one process; candidates that
    touch protected ground map to what they touch. Each candidate appears once."""
    if not pairs:
        return {}
    stdin = "".join(f"{candidate} {base}\n" for base, candidate in pairs).encode()
    out = await git.run("diff-tree", "--stdin", "-r", "--raw", "--patch", "--unified=0", "--no-color", "--no-renames",
                        stdin=stdin)
    wanted = {candidate for _, candidate in pairs}
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in out.splitlines():
        if line in wanted:  # diff-tree starts each non-empty diff with the commit's id alone on a line
            lines = sections.setdefault(line, [])
        else:
            lines.append(line)
    return {candidate: found for candidate, body in sections.items() if (found := _scan(body))}


def _scan(lines: list[str]) -> list[str]:
    """What one diff (raw lines, then the patch with no context) touches of protected ground."""
    found: list[str] = []
    first_patch = next((i for i, line in enumerate(lines) if line.startswith("diff --git ")), len(lines))
    for line in lines[:first_patch]:
        meta, _, path = line.partition("\t")
        kind = meta.split()[-1][:1] if meta.startswith(":") else ""
        if kind == "D" and TEST_FILE.search(path):
            found.append(f"{path} (deletes a test file)")
        elif kind and CONFIG.search(path):
            found.append(f"{path} (CI or check configuration)")
    current = ""
    for line in lines[first_patch:]:
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
