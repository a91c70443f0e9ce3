"""What a run does before it starts and when it stops early: the preflight, the default
spending guard, and an honest end for a run that fails after it started.

- `check_before_run`: the preflight (`longshot.preflight`) as events; a failure is a
  `ConfigError` (exit 2) naming each setting, URL and fix.
- `default_budget`: a run has a budget unless ``RUN_MAX_COST_USD=none``: `DEFAULT_COST_USD`
  when every role's model has a known price, else a token budget of `DEFAULT_TOKENS`; an
  unknown price is a warning, and costs are then shown as unknown, never as $0.
- `EndSeen`: a failure after ``run.started`` still ends the log with ``run.finished``
  carrying the real exit status, so the summary and the report tell the truth.
"""

from __future__ import annotations

from longshot.config import Config
from longshot.errors import ConfigError, LongshotError
from longshot.events import Bus, Emit, Event, PreflightChecked, RunFinished, RunStarted, RunWarning
from longshot.llm.base import ROLES
from longshot.llm.budget import RunBudget
from longshot.llm.prices import PriceTable
from longshot.preflight import preflight
from longshot.preflight.endpoints import model_settings

DEFAULT_COST_USD = 10.0
DEFAULT_TOKENS = 20_000_000


async def check_before_run(config: Config, emit: Emit) -> None:
    """The preflight of a run: its findings as events; raises ConfigError on a failure."""
    findings = await preflight(config, content=False)
    emit(PreflightChecked(checks=[{"area": c.area, "status": c.status, "detail": c.detail, "setting": c.setting,
                                   "fix": c.fix} for c in findings.checks], tokens=findings.tokens))
    for c in findings.warnings:
        emit(RunWarning(message=c.line()))
    error = findings.error()
    if error is not None:
        raise error


def default_budget(config: Config, emit: Emit) -> RunBudget:
    """The run's budget: the configured one, or the default guard (see the module docstring)."""
    prices = PriceTable(config.llm_prices_file)
    models = list(dict.fromkeys(config.model_for(role) for role in ROLES))
    unpriced = [m for m in models if prices.lookup(m) is None]
    off = config.run_max_cost_usd == "none"
    cost = None if config.run_max_cost_usd in (None, "none") else float(config.run_max_cost_usd)  # type: ignore[arg-type]
    tokens = None if config.run_max_tokens in (None, "none") else int(config.run_max_tokens)  # type: ignore[arg-type]
    guard = ""
    if not off and cost is None and not unpriced:
        cost, guard = DEFAULT_COST_USD, f"RUN_MAX_COST_USD={DEFAULT_COST_USD:g} (the default)"
    if not off and cost is None and tokens is None and config.run_max_tokens != "none" and unpriced:
        tokens, guard = DEFAULT_TOKENS, f"RUN_MAX_TOKENS={DEFAULT_TOKENS:,} (the default, as a price is unknown)"
    if unpriced:
        names = ", ".join(f"{m} ({model_settings(config, m)})" for m in unpriced)
        emit(RunWarning(message=f"no price is known for {names}: its cost is not counted and is shown as unknown"
                                + (f"; {guard} guards the run" if guard else "")
                                + ". Fix: give its prices in LLM_PRICES_FILE (USD per million input, output tokens)"))
    return RunBudget(max_tokens=tokens, max_cost_usd=cost, unpriced=unpriced)


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
