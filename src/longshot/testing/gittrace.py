"""Counting the git processes a piece of code starts, for tests that pin how many it needs.

Git writes one trace2 event file per process into a folder named by the global config
(``trace2.eventTarget``); `GitTrace` makes that config in a home folder of its own (the
caller points ``HOME`` at it before building any `longshot.git.Git`, which reads the
environment once) and counts the processes by git command since the last `mark`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


class GitTrace:
    """Git processes by command, from trace2 event files (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.events = root / "trace2"
        self.home.mkdir(parents=True, exist_ok=True)
        self.events.mkdir(parents=True, exist_ok=True)
        (self.home / ".gitconfig").write_text(f"[trace2]\n\teventTarget = {self.events}\n")
        self._seen: set[str] = set()

    def mark(self) -> None:
        """Count only processes started from now on."""
        self._seen = {f.name for f in self.events.iterdir()}

    def counts(self) -> Counter[str]:
        """The git processes started since `mark`, by command (``push``, ``update-ref`` ...)."""
        found: Counter[str] = Counter()
        for f in self.events.iterdir():
            if f.name in self._seen:
                continue
            names = [json.loads(line).get("name") for line in f.read_text(errors="replace").splitlines()
                     if '"cmd_name"' in line]
            found[names[0] if names and names[0] else "?"] += 1
        return found
