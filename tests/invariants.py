"""Invariants of a run, read from git alone (reliability-tests.md §6.1, I1-I4).

Used by the crash and resume tests: after any number of crashes and resumes, the target
branch only moved forward, every task landed at most once, the repositories are sound,
and nothing was left behind.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from longshot.testing.repos import git


def keep_reflog(remote: Path) -> None:
    """Make the bare target repository record every move of its branches (for I1)."""
    git("config", "core.logAllRefUpdates", "always", cwd=remote)


def moved_forward_only(remote: Path, branch: str = "main") -> list[str]:
    """I1: every recorded value of ``branch`` is an ancestor of the next one. Returns problems."""
    log = remote / "logs" / "refs" / "heads" / branch
    entries = [line.split()[:2] for line in log.read_text().splitlines()] if log.exists() else []
    problems = []
    for old, new in entries:
        if old != "0" * 40 and subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=remote).returncode:
            problems.append(f"{branch} moved from {old[:10]} to {new[:10]}, not a fast-forward")
    return problems


def landings(remote: Path, branch: str = "main") -> Counter[str]:
    """How many commits on ``branch`` carry each ``Longshot-Task`` trailer."""
    out = git("log", "--format=%(trailers:key=Longshot-Task,valueonly)", branch, cwd=remote)
    return Counter(line.strip() for line in out.splitlines() if line.strip())


def sound(repo: Path) -> list[str]:
    """I4: ``git fsck`` is clean and no lock file is left."""
    problems = []
    fsck = subprocess.run(["git", "fsck", "--full", "--no-progress"], cwd=repo, capture_output=True, text=True)
    if fsck.returncode != 0:
        problems.append(f"git fsck in {repo}: {fsck.stdout}{fsck.stderr}")
    problems += [f"lock file left: {p}" for p in repo.rglob("*.lock")]
    return problems


def leftovers(work: Path) -> list[str]:
    """No sandbox directory and no run lock is left in the work directory after a finished run."""
    tasks = work / "tasks"
    found = [str(p) for p in tasks.iterdir()] if tasks.is_dir() else []
    return found + [str(p) for p in work.glob("*.lock")]
