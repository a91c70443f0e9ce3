"""Events of landing work: the merge queue, the gate, the checks and the reconciler's sweeps.

Re-exported by `longshot.events`, which holds the union of all event types (`AnyEvent`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from longshot.bus import Event


class MergeLanded(Event):
    type: Literal["merge.landed"] = "merge.landed"
    commit: str
    branch: str
    queue_depth: int = 0
    seconds_to_land: float = 0.0
    """From the handoff to the target branch moving."""


class GateResult(Event):
    """The merge gate's verdict on a candidate (the exact tree that would land)."""

    type: Literal["merge.gate"] = "merge.gate"
    commit: str
    ok: bool
    reason: str = ""
    flaky: list[str] = Field(default_factory=list)
    preexisting: list[str] = Field(default_factory=list)
    checked_by: str = ""
    """When ok: ``tests`` (tests ran), ``collection`` (the test runner ran but no test did),
    ``commands`` (no per-test report: exit codes only)."""
    revealed: list[str] = Field(default_factory=list)
    """Failing tests the base could not even collect: not blamed on the change."""


class GateChecked(Event):
    """Landings vouched for so far in the run: by tests that ran, only by collection, or only by
    commands' exit codes (no test runner reported)."""

    type: Literal["merge.checked_by"] = "merge.checked_by"
    by_tests: int = 0
    by_collection: int = 0
    by_commands: int = 0


class NewSkippedTests(Event):
    """A landing adds new tests that carry a skip (allowed; skipping tests of the base is not)."""

    type: Literal["merge.new_skips"] = "merge.new_skips"
    tests: list[str] = Field(default_factory=list)


class MergeBatch(Event):
    """A batch of stacked changes was checked as one; ``depth`` counts bisection steps."""

    type: Literal["merge.batch"] = "merge.batch"
    size: int
    ok: bool
    depth: int = 0
    tasks: list[str] = Field(default_factory=list)


class MergeHealth(Event):
    """The merge queue's figures so far, after each landing or refusal."""

    type: Literal["merge.health"] = "merge.health"
    queue_depth: int
    landed: int
    failed: int
    conflicts: int
    flakes: int
    p50_seconds_to_land: float = 0.0
    p95_seconds_to_land: float = 0.0
    mean_batch: float = 0.0
    max_bisection_depth: int = 0
    landed_per_hour: float = 0.0


class MergeFailed(Event):
    type: Literal["merge.failed"] = "merge.failed"
    branch: str
    reason: str
    conflicts: list[str] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list)


class CheckFinished(Event):
    type: Literal["check.finished"] = "check.finished"
    command: str
    exit_code: int
    ok: bool
    output_tail: str = ""


class ChecksPlanned(Event):
    """The checks that judge the target: ``source`` is configured, detected or none."""

    type: Literal["checks.plan"] = "checks.plan"
    source: Literal["configured", "detected", "none"]
    commands: list[str] = Field(default_factory=list)
    ecosystems: list[str] = Field(default_factory=list)
    setup: bool = False


class SweepStarted(Event):
    """The reconciler started checking the target branch at ``commit``."""

    type: Literal["reconciler.sweep"] = "reconciler.sweep"
    sweep: int
    commit: str


class SweepFinished(Event):
    """A sweep's outcome: ``failures`` are failure signatures; ``discarded`` when the branch moved."""

    type: Literal["reconciler.result"] = "reconciler.result"
    sweep: int
    commit: str
    green: bool
    failures: list[str] = Field(default_factory=list)
    fixes: list[str] = Field(default_factory=list)
    discarded: bool = False
    preexisting: list[str] = Field(default_factory=list)
