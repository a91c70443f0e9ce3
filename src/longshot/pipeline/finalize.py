"""Final checks on the target branch and the run's verdict (DESIGN §3.1 exit codes).

The check commands come from trusted configuration (``CHECK_COMMANDS``) or are detected
from the target's files; they run in a sandbox on a fresh checkout of the final tip. A
run with no checks configured or detected is not called green, unless the user said
``CHECK_COMMANDS=none`` explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longshot.events import CheckFinished, Emit, RunWarning
from longshot.hub import Hub
from longshot.sandboxes.base import SandboxProvider, SandboxSpec
from longshot.sandboxes.output import cap_text
from longshot.types import CheckResult, Task, TaskStatus

DETECTORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pyproject.toml", "setup.py", "pytest.ini", "setup.cfg", "tox.ini"), "python -m pytest -q"),
    (("package.json",), "npm test"),
    (("Cargo.toml",), "cargo test"),
    (("go.mod",), "go test ./..."),
)


def detect_checks(files: list[str]) -> list[str]:
    """Check commands guessed from the files at the repository root."""
    top = {f for f in files if "/" not in f}
    return [command for markers, command in DETECTORS if top & set(markers)]


async def run_checks(
    provider: SandboxProvider, hub: Hub, commands: list[str], *, timeout: float, branch: str, emit: Emit
) -> list[CheckResult]:
    tip = await hub.tip()
    results: list[CheckResult] = []
    spec = SandboxSpec(task_id="final-checks", branch=branch, base_commit=tip, hub=hub.path)
    async with provider.open(spec) as sandbox:
        for command in commands:
            r = await sandbox.exec(command, timeout)
            tail = cap_text((r.stdout + "\n" + r.stderr).strip(), 4000)
            result = CheckResult(command=command, exit_code=r.exit_code, output_tail=tail, timed_out=r.timed_out)
            emit(CheckFinished(command=command, exit_code=r.exit_code, ok=result.ok, output_tail=tail))
            results.append(result)
    return results


@dataclass
class Verdict:
    exit_code: int
    green: bool
    landed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unlanded: list[str] = field(default_factory=list)
    summary: str = ""


def verdict(
    tasks: list[Task], checks: list[CheckResult] | None, unlanded: list[str], emit: Emit,
    *, errors: list[str] | None = None,
) -> Verdict:
    """Exit 0 only when the checks are green, no finished work was left unlanded, no run error."""
    landed = [t.id for t in tasks if t.status == TaskStatus.LANDED]
    failed = [t.id for t in tasks if t.status in (TaskStatus.FAILED, TaskStatus.BLOCKED)]
    reasons: list[str] = []
    if checks is None:
        green = False
        reasons.append("no check commands configured or detected (set CHECK_COMMANDS, or CHECK_COMMANDS=none)")
        emit(RunWarning(message=reasons[-1]))
    else:
        bad = [c.command for c in checks if not c.ok]
        green = not bad
        if bad:
            reasons.append("failing checks: " + ", ".join(bad))
    if unlanded:
        reasons.append("work left unlanded: " + ", ".join(unlanded))
    reasons.extend(errors or [])
    code = 0 if green and not unlanded and not errors else 1
    summary = f"{len(landed)} landed, {len(failed)} failed, {len(unlanded)} unlanded; checks " + (
        "green" if green else "NOT green") + ("" if not reasons else " (" + "; ".join(reasons) + ")")
    return Verdict(exit_code=code, green=green, landed=landed, failed=failed, unlanded=unlanded, summary=summary)
