"""Events of optimistic concurrency: hot files and conflicts predicted while workers run.

See `longshot.pipeline.foresee` (predictions, warnings, merge_tip) and
`longshot.pipeline.hotfiles`; the catalogue is ``docs/events.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from longshot.bus import Event


class FileHot(Event):
    """A file became hot (named by many open scopes, or conflicting again and again): tasks
    naming it now run one at a time, and the planner is told."""

    type: Literal["file.hot"] = "file.hot"
    path: str
    reason: str
    scopes: int = 0
    conflicts: int = 0


class ConflictPredicted(Event):
    """A running worker's current work would conflict with ``against`` (the target branch's
    tip, or another running task) in ``files``; ``lines`` says where, per file."""

    type: Literal["conflict.predicted"] = "conflict.predicted"
    against: str
    files: list[str] = Field(default_factory=list)
    lines: dict[str, str] = Field(default_factory=dict)


class WorkerWarned(Event):
    """A predicted conflict was told to the worker (a message in its conversation)."""

    type: Literal["conflict.warned"] = "conflict.warned"
    files: list[str] = Field(default_factory=list)
    delivered: bool = True
    """False when the harness cannot take messages mid-run (an external agent)."""


class TipMerged(Event):
    """A worker brought the target branch's tip into its checkout (the merge_tip tool)."""

    type: Literal["conflict.tip_merged"] = "conflict.tip_merged"
    tip: str
    conflicts: list[str] = Field(default_factory=list)


class ConflictOutcome(Event):
    """A warned task reached the merge queue: ``avoided`` when it landed without a conflict."""

    type: Literal["conflict.outcome"] = "conflict.outcome"
    avoided: bool
    files: list[str] = Field(default_factory=list)

