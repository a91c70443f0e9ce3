"""The run's verdict (DESIGN §3.1 exit codes) and the account the final summary gives.

Exit 0 only when the final checks are green, no completed work was left unlanded and the
run itself had no error. Tasks that failed, changed nothing, were split into subtasks,
or were carried on by a continuation that landed are outcomes, not unlanded work: they
never make the exit code 1 on their own. A run with no checks configured or detected is
not called green. ``green`` means checks ran and passed: with ``CHECK_COMMANDS=none`` (said
explicitly) the exit code may be 0, but the run says "no checks ran", never "green".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longshot.events import Emit, RunWarning
from longshot.pipeline.features import STATUSES, FeatureRecord
from longshot.clip import clip
from longshot.types import CheckResult, Task, TaskStatus

NO_CHECKS = "no check commands configured or detected (set CHECK_COMMANDS, or CHECK_COMMANDS=none to run without)"


@dataclass
class Verdict:
    exit_code: int
    green: bool
    landed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unlanded: list[str] = field(default_factory=list)
    summary: str = ""


@dataclass
class Account:
    """Everything the verdict weighs."""

    tasks: list[Task]
    checks: list[CheckResult] | None
    """None: no checks known; []: CHECK_COMMANDS=none."""
    unlanded: dict[str, str]
    errors: list[str] = field(default_factory=list)
    preexisting: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Failure signatures of the last sweep (conflict markers included)."""
    tokens: int = 0
    cost_usd: float = 0.0
    unpriced: list[str] = field(default_factory=list)
    """Models with no known price: their cost is unknown, never shown as $0."""
    features: list[FeatureRecord] | None = None
    """The feature ledger when FEATURES.json declares the features (then each asked one must be verified)."""


def verdict(account: Account, emit: Emit) -> Verdict:
    tasks = account.tasks
    landed = [t.id for t in tasks if t.status == TaskStatus.LANDED]
    failed = [t.id for t in tasks if t.status in (TaskStatus.FAILED, TaskStatus.BLOCKED)]
    unlanded = {k: v for k, v in account.unlanded.items()
                if next((t.status for t in tasks if t.id == k), None) not in (TaskStatus.LANDED, TaskStatus.SUPERSEDED)}
    reasons: list[str] = []
    if account.checks is None:
        green = False
        reasons.append(NO_CHECKS)
        emit(RunWarning(code="checks.none", message=NO_CHECKS))
    else:
        bad = [c for c in account.checks if not c.ok]
        green = bool(account.checks) and not bad and not account.failures
        for c in bad:
            reasons.append(f"failing check: {c.command} (exit {c.exit_code}{', timed out' if c.timed_out else ''})")
        if account.failures and not bad:
            reasons.append("still broken: " + ", ".join(account.failures[:10]))
    if account.preexisting:
        reasons.append("already failing when the run started: " + ", ".join(account.preexisting[:10]))
    reasons += [f"not landed: {k} ({why})" for k, why in sorted(unlanded.items())]
    reasons += account.errors
    unproven = [f for f in account.features or [] if f.asked and f.status != "verified"]
    reasons += [f"feature {f.id}{f' ({f.name})' if f.name else ''} is {f.status}: {clip(f.evidence, 300)}"
                for f in unproven]
    passed = green or (account.checks == [] and not account.failures)  # CHECK_COMMANDS=none: nothing to fail
    code = 0 if passed and not unlanded and not account.errors and not unproven else 1
    return Verdict(exit_code=code, green=green, landed=landed, failed=failed, unlanded=sorted(unlanded),
                   summary=_summary(account, green, landed, unlanded, reasons))


def _summary(account: Account, green: bool, landed: list[str], unlanded: dict[str, str], reasons: list[str]) -> str:
    by_status: dict[str, list[str]] = {}
    for t in account.tasks:
        by_status.setdefault(str(t.status), []).append(t.id)
    outcome = ", ".join(f"{len(ids)} {status}" for status, ids in sorted(by_status.items())) or "no tasks"
    if account.checks is None:
        checks = "none known"
    elif not account.checks:
        checks = "none (CHECK_COMMANDS=none)"
    else:
        checks = ", ".join(f"{c.command}: {'ok' if c.ok else 'FAILED'}" for c in account.checks)
    said = "green" if green else "none ran" if not account.checks else "NOT green"
    lines = [
        f"{len(landed)} landed, {len(unlanded)} unlanded; checks {said}",
        f"tasks: {outcome}",
        f"final checks: {checks}",
        *([_features_line(account.features)] if account.features is not None else []),
        f"tokens: {account.tokens:,}; cost: " + (f"unknown (no price for {', '.join(account.unpriced)})"
                                                  if account.unpriced else f"${account.cost_usd:.4f}"),
    ]
    not_landed = [t for t in account.tasks if t.status in (TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.PARTIAL,
                                                            TaskStatus.CANCELLED) and t.reason]
    lines += [f"{t.id} {t.status}: {clip(t.reason, 200)}" for t in not_landed[:30]]
    lines += [f"- {r}" for r in reasons]
    return "\n".join(lines)


def _features_line(features: list[FeatureRecord]) -> str:
    counts = {s: sum(f.status == s for f in features) for s in STATUSES}
    return "features: " + (", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none declared")
