"""What a run does before it starts and when it stops early: the preflight, and an honest
end for a run that fails after it started. (The default spending guard and the sizes fitted
to the machine are made from the settings in the build room: `longshot.build`.)

- `check_before_run`: the preflight (`longshot.preflight`) as events; a failure is a
  `ConfigError` (exit 2) naming each setting, URL and fix.
- `EndSeen`: a failure after ``run.started`` still ends the log with ``run.finished``
  carrying the real exit status, so the summary and the report tell the truth.
"""

from __future__ import annotations

from longshot.errors import ConfigError, LongshotError
from longshot.events import Bus, Emit, Event, PreflightChecked, RunFinished, RunStarted, RunWarning
from longshot.preflight import PreflightOptions, preflight


async def check_before_run(options: PreflightOptions, emit: Emit) -> None:
    """The preflight of a run: its findings as events; raises ConfigError on a failure."""
    findings = await preflight(options, content=False)
    emit(PreflightChecked(checks=[{"area": c.area, "status": c.status, "detail": c.detail, "setting": c.setting,
                                   "fix": c.fix} for c in findings.checks], tokens=findings.tokens))
    for c in findings.warnings:
        emit(RunWarning(code="preflight", message=c.line()))
    error = findings.error()
    if error is not None:
        raise error


class EndSeen:
    """A bus sink that remembers whether the run started and finished; `fail` ends it honestly."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False

    def __call__(self, event: Event) -> None:
        self.started = self.started or isinstance(event, RunStarted)
        self.finished = self.finished or isinstance(event, RunFinished)

    def fail(self, bus: Bus, exit_code: int, error: LongshotError) -> None:
        """After ``run.started`` and before ``run.finished``: record how the run really ended."""
        if self.started and not self.finished:
            kind = "configuration error" if isinstance(error, ConfigError) else "error"
            bus.emit(RunFinished(exit_code=exit_code, green=False, summary=f"stopped by a {kind}: {error}"))
