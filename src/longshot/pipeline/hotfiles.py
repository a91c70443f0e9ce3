"""Hot files: the few files worth holding while everything else runs optimistically.

With ``SCOPE_OVERLAP=allow`` (the default) tasks whose scopes share files run at once and
the merge queue's three-way merge lands their disjoint edits. A file becomes *hot* when it
is named by many open task scopes (``HOT_FILE_SCOPES``) or conflicted at landing again and
again (``HOT_FILE_CONFLICTS``): from then on tasks naming it run one at a time (the
scheduler holds it), the planner hears of it in its next prompt (so that it can give the
file one owner task, sequence work on it, or mark it a line-set file), and a `FileHot`
event tells the dashboard and the report. Line-set files (`UnionFiles`) are never hot:
their conflicts are resolved by a union merge.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Sequence

from longshot.events import Emit, FileHot
from longshot.types import Task


class UnionFiles:
    """Which files are line-sets (one entry per line, order irrelevant), merged as a union.

    ``globs`` come from UNION_MERGE_FILES (``fnmatch`` patterns on the path from the
    repository root; ``*`` also matches ``/``); a task adds its own ``union_merge`` paths.
    """

    def __init__(self, globs: Sequence[str] = ()) -> None:
        self.globs = [g.strip() for g in globs if g.strip()]

    def covers(self, path: str, task: Task | None = None) -> bool:
        extra = task.union_merge if task is not None else []
        return path in extra or any(fnmatch.fnmatchcase(path, g) for g in self.globs)


class HotFiles:
    """Tracks scope counts and landing conflicts per file; says which files are hot."""

    def __init__(self, emit: Emit, union: UnionFiles, *, scopes: int = 8, conflicts: int = 2) -> None:
        self.emit = emit
        self.union = union
        self.scopes = scopes
        """Open task scopes naming a file that make it hot (0: never by scopes)."""
        self.conflicts = conflicts
        """Landing conflicts in a file that make it hot (0: never by conflicts)."""
        self.hot: dict[str, str] = {}
        """Hot path -> why."""
        self.notes: list[str] = []
        """For the planner's next prompt: files that became hot since it was last asked."""
        self._conflicted: Counter[str] = Counter()

    def take_notes(self) -> list[str]:
        """Files that became hot since the last call, for the planner's next prompt."""
        notes, self.notes = self.notes, []
        return notes

    def is_hot(self, path: str) -> bool:
        return path in self.hot

    def scoped(self, open_tasks: Iterable[Task]) -> None:
        """Count the files named by the scopes of the tasks still open; mark the crowded ones."""
        if not self.scopes:
            return
        tasks = list(open_tasks)
        counts = Counter(p for t in tasks for p in dict.fromkeys(t.scope))
        marked = {p for t in tasks for p in t.union_merge}  # line-sets by a planner's word
        for path, n in counts.items():
            if n >= self.scopes and path not in marked:
                self._mark(path, f"named by {n} open task scopes (HOT_FILE_SCOPES={self.scopes})", n)

    def conflicted(self, files: Iterable[str]) -> None:
        """A landing conflicted in ``files``."""
        for path in files:
            self._conflicted[path] += 1
            if self.conflicts and self._conflicted[path] >= self.conflicts:
                self._mark(path, f"conflicted at landing {self._conflicted[path]} times "
                                 f"(HOT_FILE_CONFLICTS={self.conflicts})", 0)

    def _mark(self, path: str, why: str, scopes: int) -> None:
        if path in self.hot or self.union.covers(path):
            return
        self.hot[path] = why
        self.emit(FileHot(path=path, reason=why, scopes=scopes, conflicts=self._conflicted[path]))
        self.notes.append(
            f"HOT FILE {path}: {why}. Tasks naming it now run one at a time. Give it one owner task, "
            f"order the work on it with depends_on, or, if it holds one entry per line in no particular "
            f'order (an index, a list of names), name it in a task\'s "union_merge" so both sides\' lines are kept.')
