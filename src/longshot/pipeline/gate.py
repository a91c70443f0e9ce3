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
base once; a candidate that lands is the next base, already checked.

Test runners are judged per test, not per exit code (`pin.py` pins how the commands resolve
and what they run, from the base and the host; `outcomes.py` compares the per-test outcomes):
a test that passed on the base and is no longer run, or no longer passes, blocks, naming the
tests, unless the task allows it (``allow_removed_tests``); a base that could not collect
its tests does not make the change that lets them run answer for what it reveals. Each
verdict says whether tests vouched for it, only collection, or exit codes alone
(`GateChecked` counts the landings of each kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longshot.events import CheckFinished, Emit, GateChecked, GateResult
from longshot.hub import Hub
from longshot.pipeline.checks import SHOWN_OUTPUT, CheckPlan, CheckSource, run_commands
from longshot.pipeline.failures import failures_of
from longshot.pipeline.outcomes import judge
from longshot.pipeline.pin import Pin, pin_for
from longshot.sandboxes.base import SandboxProvider
from longshot.types import CheckResult


KEPT_RESULTS = 16


@dataclass
class GateDecision:
    ok: bool
    reason: str = ""
    failing: list[CheckResult] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    preexisting: list[str] = field(default_factory=list)
    checked_by: str = ""
    """``tests`` (a test ran), ``collection`` (the runner reported but no test ran), ``commands``
    (no per-test report: judged by exit codes)."""
    revealed: list[str] = field(default_factory=list)
    """Failing tests the base could not collect: not blamed on the change."""


@dataclass
class GateCoverage:
    """How many landings each kind of check vouched for, so far in the run."""

    tests: int = 0
    collection: int = 0
    commands: int = 0

    def add(self, kind: str, landings: int) -> None:
        setattr(self, kind, getattr(self, kind) + landings)

    def event(self) -> GateChecked:
        return GateChecked(by_tests=self.tests, by_collection=self.collection, by_commands=self.commands)


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
        self.pin = Pin()
        self.emit = emit
        self.timeout = timeout
        self.branch = branch
        self.runs = 0
        self.flakes: list[str] = []
        self.coverage = GateCoverage()
        self._results: dict[tuple[str, Pin], dict[str, CheckResult]] = {}
        """Results by (commit, pin), newest last: a candidate that lands is the next landing's base."""
        self._base: dict[str, dict[str, CheckResult]] = {}
        """Runs of bases, by commit (commands judged by exit code compare with these)."""
        self._silent: set[str] = set()
        """Commands seen with no per-test report on a base: a passing candidate without one
        needs no base run."""
        self._confirmed: set[str] = set()
        """Bases whose failures were seen twice (so they are real, not flakes)."""

    async def run(self, commit: str, commands: list[str], label: str) -> dict[str, CheckResult]:
        """Run every command on ``commit`` in a fresh sandbox, with the machinery pinned from the base."""
        self.runs += 1
        result = await run_commands(self.provider, self.hub, commit, self.plan, timeout=self.timeout,
                                    branch=self.branch, label=f"gate-{label}", commands=commands, emit=self.emit,
                                    pin=self.pin)
        self._results[(commit, self.pin)] = result
        self._silent -= {c for c, r in result.items() if r.tests is not None}
        while len(self._results) > KEPT_RESULTS:
            self._results.pop(next(iter(self._results)))
        while len(self._base) > KEPT_RESULTS:
            self._base.pop(next(iter(self._base)))
        return result

    async def _on(self, commit: str, label: str) -> dict[str, CheckResult]:
        """The results on ``commit`` (a base): from the cache when it was checked with per-test
        reports (as a candidate or a base), else a run of the base, kept for this base."""
        cached = self._results.get((commit, self.pin))
        if cached is not None and any(r.tests is not None for r in cached.values()):
            return cached
        if commit not in self._base:
            self._base[commit] = await self.run(commit, self.commands, label)
        return self._base[commit]

    @property
    def commands(self) -> list[str]:
        return self.plan.commands

    async def check(self, task_id: str, candidate: str, base: str, *, allowances: list[str] | None = None,
                    landings: int = 1) -> GateDecision:
        """Judge ``candidate`` (the tree that would land on ``base``). ``allowances``: tests the
        task may remove or skip; ``landings``: how many changes the candidate lands (a batch)."""
        self.plan = await self.source.plan_for(base)  # from the base: a change cannot switch off its own checks
        if not self.plan.checks:
            return self._done(task_id, candidate, GateDecision(ok=True, reason="no checks known"), landings)
        self.pin = await pin_for(await self.hub.files(base), lambda p: self.hub.show(base, p))
        result = await self.run(candidate, self.commands, task_id)
        failing = [r for r in result.values() if not r.ok]
        if not failing and all(r.tests is None and r.command in self._silent for r in result.values()):
            return self._done(task_id, candidate, GateDecision(ok=True, checked_by="commands"), landings)
        # Against the base (cached when it was checked as a candidate): a command that
        # reported tests there and reports none now no longer runs them.
        on_base = await self._on(base, f"{task_id}-base")
        self._silent |= {c for c, r in on_base.items() if r.ok and r.tests is None and result.get(c, r).tests is None}
        if not failing and all(r.tests is None and on_base.get(r.command, r).tests is None for r in result.values()):
            return self._done(task_id, candidate, GateDecision(ok=True, checked_by="commands"), landings)
        judged = {c: judge(on_base.get(c), r, allowances or []) for c, r in result.items()}
        blocking = [j for j in judged.values() if j is not None and j.blocking]
        if any(j.regressed or j.new_failures or j.exit_only for j in blocking):
            # a test that fails must fail again on a re-run (else it is a flake); what is no longer
            # collected is not a matter of chance
            again = await self.run(candidate, self.commands, f"{task_id}-rerun")
            for j in blocking:
                later = judge(on_base.get(j.command), again[j.command], allowances or [])
                flaky = j.ids() - (later.ids() if later is not None else set())
                self.flakes += sorted(flaky)
                j.keep_only(j.ids() - flaky)
            blocking = [j for j in blocking if j.blocking]
        tested = [j for j in judged.values() if j is not None]
        checked_by = ("tests" if any(j.tests_run for j in tested) else "collection") if tested else "commands"
        if blocking:
            reason = "check failed on the merged tree: " + "; ".join(j.reason() for j in blocking)
            failing_results = [result[j.command] for j in blocking]
            return self._done(task_id, candidate, GateDecision(ok=False, reason=reason, failing=failing_results), landings)
        legacy = [r for r in failing if judged[r.command] is None]
        verdict = await self._by_exit_code(task_id, candidate, base, legacy, on_base) if legacy else GateDecision(ok=True)
        verdict.checked_by = checked_by
        verdict.revealed = [t for j in tested for t in j.revealed]
        verdict.preexisting += [t for j in tested for t in j.preexisting][:50]
        return self._done(task_id, candidate, verdict, landings)

    async def _by_exit_code(self, task_id: str, candidate: str, base: str, failing: list[CheckResult],
                            on_base: dict[str, CheckResult]) -> GateDecision:
        """Commands without a per-test report: blamed if they fail anew (and again on a re-run)."""
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
            return GateDecision(ok=True, preexisting=preexisting)
        again = await self.run(candidate, self.commands, f"{task_id}-rerun")
        if all(again[r.command].ok for r in new):
            flaky = [r.command for r in new]
            self.flakes += flaky
            return GateDecision(ok=True, flaky=flaky + base_flakes, preexisting=preexisting)
        blamed = new[0]
        if on_base[blamed.command].ok:
            why = f"it passes on {self.hub.branch} at {base[:10]} without this change"
        else:
            seen = {f.signature for f in failures_of(on_base[blamed.command])}
            added = [f.signature for f in failures_of(blamed) if f.signature not in seen]
            why = f"it fails on {self.hub.branch} at {base[:10]} too, but this change adds: {', '.join(added[:5])}"
        reason = f"check failed on the merged tree: {blamed.command} (exit {blamed.exit_code}; {why})"
        return GateDecision(ok=False, reason=reason, failing=new, preexisting=preexisting)

    def _done(self, task_id: str, candidate: str, v: GateDecision, landings: int) -> GateDecision:
        for r in v.failing:
            self.emit(CheckFinished(task_id=task_id, command=r.command, exit_code=r.exit_code, ok=False,
                                    output_tail=r.output_tail[-SHOWN_OUTPUT:]))
        self.emit(GateResult(task_id=task_id, commit=candidate, ok=v.ok, reason=v.reason, flaky=v.flaky,
                             preexisting=v.preexisting, checked_by=v.checked_by if v.ok else "",
                             revealed=v.revealed[:50]))
        if v.ok and v.checked_by:
            self.coverage.add(v.checked_by, landings)
            self.emit(self.coverage.event())
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
