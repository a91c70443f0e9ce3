"""The feature ledger's part of a run: what the orchestrator and the main loop call.

`FeatureRun.open` reads ``FEATURES.json`` from the run's start commit (or restores the
recorded ledger of a resumed run, and the claim checker's counts) and makes the prover,
which judges from that commit on; `verify` judges the features on a finalization sweep's tree and returns
the verification tasks for claimed ones; `judge` gives the final ledger for the verdict.
It is one bus sink for the ledger's live updates and the claim checker's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from longshot.errors import LongshotError
from longshot.events import Emit, Event, RunWarning
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource
from longshot.pipeline.claims import ClaimChecker
from longshot.pipeline.features import FeatureLedger, FeatureRecord, parse_features
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.proof import Prover
from longshot.pipeline.reconcile import SweepOutcome
from longshot.pipeline.state import RunState
from longshot.sandboxes.base import SandboxProvider
from longshot.types import Handoff, Task

FEATURES_FILE = "FEATURES.json"


class FeatureRun:
    def __init__(self, emit: Emit, validator: TaskValidator, hub: Hub, provider: SandboxProvider, checks: CheckSource,
                 task: Callable[[str], Task | None], *, prefix: str, timeout: float, worker_model: str) -> None:
        self.emit = emit
        self.validator = validator
        self.hub = hub
        self.provider = provider
        self.checks = checks
        self.prefix = prefix
        self.timeout = timeout
        self.ledger = FeatureLedger(emit)
        self.claims = ClaimChecker(provider, hub, checks, emit, task, timeout=timeout, prefix=prefix,
                                   default_model=worker_model)
        self.prover: Prover | None = None
        """Made by `open`: it judges what landed since the run's start commit."""

    def __call__(self, event: Event) -> None:
        self.ledger(event)
        self.claims(event)

    async def open(self, record: RunState, *, resumed: bool) -> None:
        """The features of this run: the recorded ledger when resuming, else FEATURES.json at the start."""
        self.prover = Prover(self.provider, self.hub, self.checks, record.start_commit, self.timeout, self.prefix)
        self.claims.restore(record.claims)
        if resumed:
            self.ledger.restore(record.features)
        if not self.ledger.declared and not self.ledger.records:  # a new run (or one recorded without a ledger)
            text = await self.hub.show(record.start_commit, FEATURES_FILE)
            if text is not None:
                try:
                    self.ledger.declare(parse_features(text))
                except ValueError as e:  # json.JSONDecodeError is one
                    self.emit(RunWarning(code="features.unreadable", message=f"{FEATURES_FILE} cannot be read ({e}); the features are the "
                                                 "planned work items instead. Fix: make it valid JSON with a "
                                                 '"features" list'))
        if self.ledger.declared:
            self.validator.declare_features(self.ledger.specs)

    def snapshot(self) -> dict[str, Any]:
        """The fields of `RunState` this part owns."""
        return {"features": self.ledger.snapshot(), "claims": self.claims.snapshot()}

    async def run(self) -> None:
        """The claim checker's loop (cancel to stop)."""
        await self.claims.run()

    async def drain(self) -> None:
        await self.claims.drain()

    async def verify(self, outcome: SweepOutcome, tasks: list[Task], handoffs: dict[str, Handoff]) -> list[Task]:
        """Judge the features on a finalization sweep; verification tasks for the claimed ones."""
        if not self.ledger.declared or outcome.discarded:
            return []
        await self.judge(outcome, tasks, handoffs)
        return self.ledger.verification_tasks(self.validator, self.prefix)

    async def judge(self, outcome: SweepOutcome, tasks: list[Task],
                    handoffs: dict[str, Handoff]) -> list[FeatureRecord] | None:
        """The ledger judged on the swept tree; None without FEATURES.json (it then decides nothing)."""
        assert self.prover is not None
        if self.ledger.judged_at != outcome.commit or not self.ledger.declared:
            try:
                await self.ledger.judge(self.prover, outcome.commit, tasks, handoffs, outcome.results)
            except LongshotError as e:
                self.emit(RunWarning(code="features.unjudged", message=f"the features could not be judged on {outcome.commit[:10]}: {e}"))
        return list(self.ledger.records.values()) if self.ledger.declared else None
