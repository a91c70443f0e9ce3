"""Size caps on the free text a model writes, applied where its words become data.

A model's handoff, plan or scratchpad is untrusted input: unbounded, a 3 MB handoff became a
1.6 MB planner request and a 6 MB run-state document. Each field below is cut to its cap
when the model object is built (`longshot.types`, `longshot.harnesses.base`,
`longshot.pipeline.parse`), so nothing longer reaches the run state, a prompt, an event or
git. A cut text ends with a marker saying how much was cut; a cut list with a last item
saying how many were dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

SUMMARY = 4000
"""Characters of a handoff's summary (also the body of the task's commit message)."""
NOTE = 1000
"""Characters of one concern or suggestion."""
NOTES = 20
"""Concerns, or suggestions, one handoff keeps."""
DESCRIPTION = 8000
"""Characters of a task's description."""
ACCEPTANCE = 4000
"""Characters of a task's acceptance criteria."""
SCRATCHPAD = 8000
"""Characters of a planner's scratchpad (kept in the run state and carried across compactions)."""
PATHS = 200
"""Entries of a task's scope."""
PATH = 500
"""Characters of one scope path."""
IDS = 100
"""Entries of a task's ``depends_on`` or ``fixes`` list."""
ID = 200
"""Characters of one such entry."""
PLAN_TASKS = 1000
"""Tasks of one planner answer that are read at all (MAX_TASKS_PER_SPRINT then applies)."""


def cut(text: str, limit: int) -> str:
    """``text``, or its start and a marker saying how many characters were cut, ``limit`` in all.

    Idempotent: what was cut is not cut again when the state is read back.
    """
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} more characters cut]"
    keep = max(0, limit - len(marker))
    return text[:keep] + f"\n[... {len(text) - keep} more characters cut]"[: limit - keep]


def cut_list(items: list[str], count: int, each: int, *, marker: bool = True) -> list[str]:
    """At most ``count`` items of at most ``each`` characters; with ``marker``, the last item
    says how many were dropped (lists of names take ``marker=False``: a marker is no name)."""
    if len(items) <= count:
        return [cut(item, each) for item in items]
    if not marker:
        return [cut(item, each) for item in items[:count]]
    return [cut(item, each) for item in items[: count - 1]] + [f"[... {len(items) - count + 1} more cut]"]


def _text(limit: int) -> Callable[[str], str]:
    return lambda value: cut(value, limit)


def _names(count: int, each: int) -> Callable[[list[str]], list[str]]:
    return lambda value: cut_list(value, count, each, marker=False)


Summary = Annotated[str, AfterValidator(_text(SUMMARY))]
Description = Annotated[str, AfterValidator(_text(DESCRIPTION))]
Acceptance = Annotated[str, AfterValidator(_text(ACCEPTANCE))]
Notes = Annotated[list[str], AfterValidator(lambda value: cut_list(value, NOTES, NOTE))]
Scope = Annotated[list[str], AfterValidator(_names(PATHS, PATH))]
Ids = Annotated[list[str], AfterValidator(_names(IDS, ID))]
Name = Annotated[str, AfterValidator(_text(ID))]
"""A task id, branch or feature a model gave (validated further where it is used)."""
