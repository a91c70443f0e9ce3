"""Events of the feature ledger: a feature's status, and a worker's claim checked (docs/features.md).

Re-exported by `longshot.events`, which holds the union of all event types (`AnyEvent`).
"""

from __future__ import annotations

from typing import Literal

from longshot.bus import Event
from longshot.types import FeatureLine


class FeatureStatus(Event, FeatureLine):
    """A feature of the ledger was announced, or its status, tasks, commits, tests or evidence changed."""

    type: Literal["feature.status"] = "feature.status"
    feature: str
    before: str | None = None
    """Its status before this change (None when first announced)."""


class ClaimChecked(Event):
    """A worker's ``complete`` was checked against its task's acceptance on its own branch."""

    type: Literal["claim.checked"] = "claim.checked"
    verified: bool
    role: str = "worker"
    model: str = ""
    commit: str = ""
    command: str = ""
    exit_code: int = 0
    evidence: str = ""
    """The end of the command's output (a failing one's is the evidence of an unverified claim)."""
