"""The merge gate: the target branch only moves to a tree that passed the checks.

Before the merge queue moves the target branch, the check commands run on the candidate
commit, exactly the tree that would land, in a sandbox with the same isolation as the
workers. The commands come from trusted configuration (never from the branch checked).

A failure is blamed on the change only if it is new and real:
- a command that also fails on the base (the current tip, run without the change), twice,
  is a pre-existing failure: it does not block the change (it does not make things worse);
  a base failure that does not repeat is a flake on the base, and excuses nothing;
- a command that fails on the candidate, passes on the base, and passes when re-run on
  the candidate is a flake: recorded, not blamed.
Base results are cached per base commit, so a queue of changes on one tip pays for the
base once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longshot.events import CheckFinished, Emit, GateResult
from longshot.hub import Hub
from longshot.pipeline.checks import SHOWN_OUTPUT, CheckPlan, CheckSource, run_commands
from longshot.pipeline.failures import failures_of
from longshot.sandboxes.base import SandboxProvider
from longshot.types import CheckResult


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    failing: list[CheckResult] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    preexisting: list[str] = field(default_factory=list)


class Gate:
    def __init__(self, provider: SandboxProvider, hub: Hub, checks: CheckSource | CheckPlan | list[str], emit: Emit, *,
                 timeout: float, branch: str) -> None:
        self.provider = provider
        self.hub = hub
        if isinstance(checks, CheckSource):
            self.source = checks
        else:
            self.source = CheckSource(hub, checks.commands if isinstance(checks, CheckPlan) else checks)
            if isinstance(checks, CheckPlan):
                self.source.configured = checks
        self.plan = CheckPlan()
        self.emit = emit
        self.timeout = timeout
        self.branch = branch
        self.runs = 0
        self.flakes: list[str] = []
        self._base: dict[str, dict[str, CheckResult]] = {}
        self._confirmed: set[str] = set()
        """Bases whose failures were seen twice (so they are real, not flakes)."""

    async def run(self, commit: str, commands: list[str], label: str) -> dict[str, CheckResult]:
        """Run every command on ``commit`` in a fresh sandbox."""
        self.runs += 1
        return await run_commands(self.provider, self.hub, commit, self.plan, timeout=self.timeout, branch=self.branch,
                                  label=f"gate-{label}", commands=commands, emit=self.emit)

    @property
    def commands(self) -> list[str]:
        return self.plan.commands

    async def check(self, task_id: str, candidate: str, base: str) -> Verdict:
        self.plan = await self.source.plan_for(base)  # from the base: a change cannot switch off its own checks
        if not self.plan.checks:
            return self._done(task_id, candidate, Verdict(ok=True, reason="no checks known"))
        result = await self.run(candidate, self.commands, task_id)
        failing = [r for r in result.values() if not r.ok]
        if not failing:
            return self._done(task_id, candidate, Verdict(ok=True))
        if base not in self._base:
            self._base[base] = await self.run(base, self.commands, f"{task_id}-base")
        on_base = self._base[base]
        preexisting = [r.command for r in failing if r.command in on_base and _no_worse(r, on_base[r.command])]
        base_flakes: list[str] = []
        if preexisting and base not in self._confirmed:
            # A base failure excuses the change only if it repeats: a flaky failure on the base
            # must not let a real breakage through.
            again_on_base = await self.run(base, self.commands, f"{task_id}-base-again")
            base_flakes = [c for c in preexisting if again_on_base[c].ok]
            self.flakes += base_flakes
            for c in base_flakes:
                on_base[c] = again_on_base[c]
            self._confirmed.add(base)
            preexisting = [c for c in preexisting if c not in base_flakes]
        new = [r for r in failing if r.command not in preexisting]
        if not new:
            return self._done(task_id, candidate, Verdict(ok=True, preexisting=preexisting))
        again = await self.run(candidate, self.commands, f"{task_id}-rerun")
        if all(r.ok or r.command in preexisting for r in again.values()):
            flaky = [r.command for r in new]
            self.flakes += flaky
            return self._done(task_id, candidate, Verdict(ok=True, flaky=flaky + base_flakes, preexisting=preexisting))
        blamed = new[0]
        if on_base[blamed.command].ok:
            why = f"it passes on {self.hub.branch} at {base[:10]} without this change"
        else:
            seen = {f.signature for f in failures_of(on_base[blamed.command])}
            added = [f.signature for f in failures_of(blamed) if f.signature not in seen]
            why = f"it fails on {self.hub.branch} at {base[:10]} too, but this change adds: {', '.join(added[:5])}"
        reason = f"check failed on the merged tree: {blamed.command} (exit {blamed.exit_code}; {why})"
        return self._done(task_id, candidate, Verdict(ok=False, reason=reason, failing=new, preexisting=preexisting))

    def _done(self, task_id: str, candidate: str, v: Verdict) -> Verdict:
        for r in v.failing:
            self.emit(CheckFinished(task_id=task_id, command=r.command, exit_code=r.exit_code, ok=False,
                                    output_tail=r.output_tail[-SHOWN_OUTPUT:]))
        self.emit(GateResult(task_id=task_id, commit=candidate, ok=v.ok, reason=v.reason, flaky=v.flaky,
                             preexisting=v.preexisting))
        return v


def _no_worse(candidate: CheckResult, base: CheckResult) -> bool:
    """A command failing on both trees excuses the change only if it adds no failure of its own.

    Failures the base could not even reach are not new: a test in a file that failed to
    collect or import on the base was masked there, not passing.
    """
    if base.ok:
        return False
    on_base = failures_of(base)
    known = {f.signature for f in on_base}
    unreached = {f.file for f in on_base if f.level != "test" and f.file}
    generic_base = any("`" in f.signature for f in on_base)
    new = [f for f in failures_of(candidate) if f.signature not in known
           and not (f.level == "test" and f.file in unreached)
           and not ("`" in f.signature and generic_base)]
    return not new
